"""train's options as the Python API takes them: only those given, and only where they apply."""

from typing import Optional

from click.core import ParameterSource

from ..scopes import misplaced_option, run_kind
from ..errors import ConfigError

# train's parameters whose Python API option has another name
API_NAMES = {"fmt": "format", "vocab_path": "vocab", "cooccur_path": "cooccur", "which_vectors": "vectors",
             "resume_dir": "resume"}
NOT_OPTIONS = {"corpus", "output", "model", "quiet", "as_json"}  # train passes or uses these itself


def given(ctx, name: str) -> bool:
    """Whether the parameter was given (on the command line or in the environment), not defaulted."""
    return ctx.get_parameter_source(name) not in (ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP)


def given_options(ctx) -> dict:
    """The options given, under the API's names (those given on the command line first, in its order)."""
    return {API_NAMES.get(name, name): value for name, value in ctx.params.items()
            if name not in NOT_OPTIONS and given(ctx, name)}


def check_options(options: dict, model: str, checkpoint: Optional[dict]) -> None:
    """Refuse an option given where it does not apply (scopes.OPTION_SCOPES, which the Python API's
    run asks too): it would be dropped, yet written to OUTPUT.json as if used. Nothing has loaded or
    been read yet."""
    misplaced = misplaced_option(options, run_kind(model, options, checkpoint), checkpoint)
    if misplaced is not None:
        raise ConfigError(misplaced[1])
