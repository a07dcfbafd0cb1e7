"""The control-plane conformance suite against a real ``clearml-core server``, through its API.

The tests the suite has that cannot hold for any ClearML API server are skipped, each saying why:
the server keeps its own clock (the suite's fake clock stamps nothing), gives tasks their ids,
shows one task per worker, and keeps no documents of the client's. What the clock-bound ones check
besides the times is checked again, with the server's times, in test_plane.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from clearml_core_controlplane_clearml.plane import ClearMLControlPlane

from clearml_core.controlplane import open_control_plane
from clearml_core.testing.clearml_server import ClearMLServer
from clearml_core.testing.controlplane import ControlPlaneContract

SERVER_CLOCK = "the server stamps times with its own clock, not the plane's"
NOT_APPLICABLE = {
    "test_create_assigns_id_status_and_time": SERVER_CLOCK,
    "test_update_task": SERVER_CLOCK,
    "test_list_filters_and_order": SERVER_CLOCK,
    "test_enqueue_and_dequeue": SERVER_CLOCK,
    "test_pop_runs_the_task": SERVER_CLOCK,
    "test_completion_records_the_end": SERVER_CLOCK,
    "test_logs_append_and_read": SERVER_CLOCK,
    "test_logs_are_a_sign_of_life": SERVER_CLOCK,
    "test_worker_register_heartbeat_unregister": SERVER_CLOCK,
    "test_runtime_properties_expire": SERVER_CLOCK,
    "test_watchdog_fails_a_task_whose_worker_went_silent": SERVER_CLOCK
    + "; the server runs its own watchdog",
    "test_watchdog_counts_task_output_as_life": SERVER_CLOCK + "; the server runs its own watchdog",
    "test_watchdog_can_requeue": SERVER_CLOCK + "; the server runs its own watchdog",
    "test_watchdog_leaves_live_and_finished_tasks_alone": SERVER_CLOCK + "; the server runs its own watchdog",
    "test_create_with_a_given_id": "a ClearML API server gives each task its id",
    "test_worker_tasks_follow_their_runs": "ClearML's workers.get_all shows one task per worker",
    "test_heartbeat_of_an_unknown_worker_registers_it": "ClearML names a worker's queues by id: a queue "
    "that does not exist cannot be among them",
    "test_the_lease_holder_keeps_its_lease": "the server runs the fleet's chores (its watchdog) itself; "
    "no daemon is given the lease",
    "test_documents": "documents are a server's own store; a client of the API keeps none",
    "test_only_new_documents_are_created_once_across_threads": "documents are a server's own store",
}


class TestClearMLContract(ControlPlaneContract):
    tasks_for_processes = 60
    tasks_for_threads = 60

    @pytest.fixture
    def control_plane(self, server_env: ClearMLServer) -> Iterator[ClearMLControlPlane]:
        plane = open_control_plane()
        assert isinstance(plane, ClearMLControlPlane)
        yield plane
        plane.close()


def _not_applicable(name: str, reason: str) -> None:
    assert hasattr(TestClearMLContract, name), name

    @pytest.mark.skip(reason=reason)
    def skipped(self: TestClearMLContract) -> None: ...

    skipped.__name__ = name
    setattr(TestClearMLContract, name, skipped)


for _name, _reason in NOT_APPLICABLE.items():
    _not_applicable(_name, _reason)
