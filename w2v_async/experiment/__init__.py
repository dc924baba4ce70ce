"""`w2v-async experiment`: one model, corpus and settings trained under every update scheme, with
the sparsity the HOGWILD! argument assumes measured on the same updates, written up as a report."""
