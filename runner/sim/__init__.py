"""The Insights simulator: an identity service and every endpoint of the legacy Web API over
a seeded synthetic tenant, runnable embedded (tests, benchmarks, ``simulator: true``) or
alone (``insights-runner sim serve``).  See README, section "The simulator".
"""

from runner.sim.credentials import Credentials
from runner.sim.faults import Faults
from runner.sim.server import SimConfig, Simulator
from runner.sim.tenant import SCALES, Scale, Tenant

__all__ = ["Credentials", "Faults", "SCALES", "Scale", "SimConfig", "Simulator", "Tenant"]
