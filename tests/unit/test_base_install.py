"""The services image installs the package without its model extras: the services and the
client commands must run without torch, transformers, tokenizers or Triton's server."""

import subprocess
import sys
import textwrap

import pytest

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


def test_up_without_the_stack_extra_says_what_to_install_in_one_line(tmp_path):
    result = run_without_extras(
        f"import sys; sys.argv = ['tagllm', 'up', '--run-dir', {str(tmp_path / 'run')!r}]\n"
        "from tagllm.cli.main import main\nsys.exit(main())"
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    (line,) = result.stderr.strip().splitlines()
    assert "nvidia-pytriton" in line and line.endswith("pip install 'tagllm[stack]'"), line
    assert not (tmp_path / "run").exists()  # nothing was started


def test_up_help_describes_the_model_it_serves(monkeypatch, capsys):
    from tagllm.cli.main import main
    from tagllm.mllm.default_model import DEMO_MODEL_DIR, MODEL_DIR_ENV, default_model_dir

    monkeypatch.delenv(MODEL_DIR_ENV, raising=False)
    with pytest.raises(SystemExit):
        main(["up", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert default_model_dir() == DEMO_MODEL_DIR
    assert "else the demo model shipped with the package" in help_text and "tiny" not in help_text
