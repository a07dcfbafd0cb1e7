"""GPU pinning and dynamic allocation per queue, on simulated device lists."""

from __future__ import annotations

import pytest

from clearml_core.agent.gpus import (
    GpuAllocator,
    GpuSpecError,
    QueueRequest,
    detect_gpus,
    gpu_environment,
    parse_gpus,
    parse_queue_requests,
)


def test_parse_gpus() -> None:
    assert parse_gpus("0,1") == ["0", "1"]
    assert parse_gpus("0-3") == ["0", "1", "2", "3"]
    assert parse_gpus("0, 2-3") == ["0", "2", "3"]
    assert parse_gpus("0:0,0:1") == ["0:0", "0:1"]
    assert parse_gpus(None) is None and parse_gpus("all") is None
    assert parse_gpus("none") == []
    for bad in ("3-1", "0,0", "0;1"):
        with pytest.raises(GpuSpecError):
            parse_gpus(bad)


def test_gpu_environment() -> None:
    assert gpu_environment(None) == {}
    assert gpu_environment([]) == {"CUDA_VISIBLE_DEVICES": "", "NVIDIA_VISIBLE_DEVICES": "none"}
    assert gpu_environment(["0", "2"]) == {"CUDA_VISIBLE_DEVICES": "0,2", "NVIDIA_VISIBLE_DEVICES": "0,2"}


def test_parse_queue_requests() -> None:
    assert parse_queue_requests(["dual=2", "opportunistic=1-4"]) == [
        QueueRequest("dual", 2, 2),
        QueueRequest("opportunistic", 1, 4),
    ]
    for bad, message in (
        ("dual", "GPU count"),
        ("x=0", "at least one"),
        ("x=4-2", "MIN"),
        ("x=0.5", "fraction"),
    ):
        with pytest.raises(GpuSpecError, match=message):
            parse_queue_requests([bad])


def test_the_documented_example_quad_then_dual() -> None:
    # --dynamic-gpus --gpus 0-7 --queue quad_gpu=4 dual_gpu=2
    allocator = GpuAllocator(parse_gpus("0-7") or [])
    quad, dual = parse_queue_requests(["quad_gpu=4", "dual_gpu=2"])
    assert allocator.allocate("t1", quad) == ["0", "1", "2", "3"]
    assert allocator.allocate("t2", dual) == ["4", "5"]
    assert allocator.allocate("t3", dual) == ["6", "7"]
    assert not allocator.can_serve(dual) and allocator.allocate("t4", dual) is None
    assert allocator.release("t2") == ["4", "5"]
    assert allocator.can_serve(dual) and not allocator.can_serve(quad)
    assert allocator.usage() == {"0": "t1", "1": "t1", "2": "t1", "3": "t1", "6": "t3", "7": "t3"}


def test_a_range_takes_what_is_free_up_to_its_maximum() -> None:
    # --dynamic-gpus --gpus 0-7 --queue dual=2 opportunistic=1-4
    allocator = GpuAllocator([str(i) for i in range(8)])
    dual, opportunistic = parse_queue_requests(["dual=2", "opportunistic=1-4"])
    assert allocator.allocate("a", opportunistic) == ["0", "1", "2", "3"]
    assert allocator.allocate("b", dual) == ["4", "5"]
    assert allocator.allocate("c", opportunistic) == ["6", "7"]
    assert allocator.allocate("d", opportunistic) is None
    allocator.release("b")
    assert allocator.allocate("d", opportunistic) == ["4", "5"]


def test_detect_gpus_without_a_driver_trusts_cuda_visible_devices() -> None:
    try:
        import pynvml

        pynvml.nvmlInit()
        pynvml.nvmlShutdown()
        pytest.skip("this machine has an NVIDIA driver; the devices come from NVML")
    except Exception:
        pass
    assert detect_gpus({"CUDA_VISIBLE_DEVICES": "1,3"}) == ["1", "3"]
    assert detect_gpus({}) == []
