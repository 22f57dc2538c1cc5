"""The services image installs the package without its model extras: the services and the
client commands must run without torch, transformers, tokenizers or Triton's server."""

import subprocess
import sys
import textwrap

# A module finder that refuses the extras' packages, as an install without them would.
BLOCK = textwrap.dedent(
    """
    import sys
    class NotInstalled:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {"torch", "transformers", "tokenizers", "pytriton", "cryptography"}:
                raise ModuleNotFoundError(f"No module named {name!r} (blocked)")
            return None
    sys.meta_path.insert(0, NotInstalled())
    """
)


def run_without_extras(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK + code], capture_output=True, text=True, timeout=120)


def test_the_services_start_without_the_model_extras():
    result = run_without_extras(
        "import services.gateway.server, services.refiner.server, services.metrics.server\n"
        "from tagllm.settings import load_settings\n"
        "from services.refiner.server import RefinerSettings, build_server\n"
        "build_server(load_settings(RefinerSettings, 'X_', triton_url='127.0.0.1:1', metrics_address=''))\n"
        "print('ok')"
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-3000:]


def test_the_client_commands_run_without_the_model_extras():
    for command in (["annotate", "--help"], ["tag", "--help"], ["vocab", "--help"], ["eval", "--help"]):
        result = run_without_extras(
            f"import sys; sys.argv = ['tagllm', *{command!r}]\nfrom tagllm.cli.main import main\nmain()"
        )
        assert result.returncode == 0 and "usage: tagllm" in result.stdout, (command, result.stderr[-3000:])


def test_the_block_is_real():
    result = run_without_extras("import torch")
    assert result.returncode != 0 and "blocked" in result.stderr
