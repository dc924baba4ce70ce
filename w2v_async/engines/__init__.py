"""Engines: how the updates of one model are spread over workers (threads.py: Hogwild threads; ray.py:
Downpour SGD on Ray). Each is given the same inputs and returns the same results (base.py)."""
