"""Shared fixtures.  Tests talk to the real simulator over 127.0.0.1, never to mocks."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import settings

# No deadline on Hypothesis examples: it times each one, and on 2 shared cores an example of
# 7 ms took 477 under load and failed the suite.  Speed is measured in benchmarks/.
settings.register_profile("shared-machine", deadline=None)
settings.load_profile("shared-machine")

REPO = Path(__file__).resolve().parent.parent
# the vendor's references sit in shared/reference beside the repository (or beside the
# folder of worktrees that holds it)
_REFERENCES = next((p / "shared" / "reference" for p in (REPO.parent, REPO.parent.parent)
                    if (p / "shared" / "reference").is_dir()), REPO.parent / "shared" / "reference")
REFERENCE = _REFERENCES / "insights-web-api-legacy.txt"
REFERENCE_V2 = _REFERENCES / "insights-graph-api-v2.md"


@pytest.fixture(scope="session")
def reference_text() -> str:
    if not REFERENCE.exists():
        pytest.skip(f"the vendor reference is not beside the repository ({REFERENCE})")
    return REFERENCE.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def reference_v2_text() -> str:
    if not REFERENCE_V2.exists():
        pytest.skip(f"the v2 reference is not beside the repository ({REFERENCE_V2})")
    return REFERENCE_V2.read_text(encoding="utf-8")


# --------------------------------------------------------------------- the simulator


@pytest.fixture
def sim():
    """A running simulator (small tenant, 0.2 s export jobs, no faults) on 127.0.0.1."""
    from runner.sim import SimConfig, Simulator

    with Simulator(SimConfig(seed=7, scale="small", job_seconds=0.2)) as running:
        yield running


@pytest.fixture
def sim_auth(sim):
    """The Authorization header of a fresh token from ``sim``."""
    from sim_support import headers

    return headers(sim)


@pytest.fixture
def make_sim():
    """Start simulators with any ``SimConfig`` fields: ``make_sim(faults=Faults(...))``.
    Every one started is stopped when the test ends."""
    from runner.sim import SimConfig, Simulator

    started = []

    def start(**config):
        config.setdefault("job_seconds", 0.2)
        simulator = Simulator(SimConfig(**config)).start()
        started.append(simulator)
        return simulator

    yield start
    for simulator in started:
        simulator.stop()


# ------------------------------------------------- real servers (tests/servers.py)


@pytest.fixture(scope="session")
def postgres_cluster():
    """A throwaway PostgreSQL cluster on a free 127.0.0.1 port, for the session."""
    from servers import postgres_server

    with postgres_server() as server:
        yield server


@pytest.fixture
def pg_url(postgres_cluster) -> str:
    """The URL of a fresh, empty database of the session's cluster."""
    return postgres_cluster.new_database()


@pytest.fixture(scope="session")
def azurite():
    from servers import azurite_server

    with azurite_server() as env:
        yield env


@pytest.fixture(scope="session")
def moto():
    from servers import moto_server

    with moto_server() as env:
        yield env


@pytest.fixture(params=["az", "s3"])
def bucket(request):
    """A fresh container on Azurite, or bucket on moto's S3 server."""
    from servers import new_bucket

    env = request.getfixturevalue("azurite" if request.param == "az" else "moto")
    return new_bucket(request.param, env)
