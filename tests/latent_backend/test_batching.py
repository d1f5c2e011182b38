import threading
import time

from latent_backend.batching import MicroBatcher


def run_concurrently(batcher: MicroBatcher, delays: list[float], participants: bool) -> list[list[int]]:
    batches: list[list[int]] = []

    def run_batch(requests):
        batches.append(sorted(requests))
        return requests

    def worker(index: int, delay: float):
        def body():
            time.sleep(delay)
            assert batcher.submit("k", index, run_batch) == index

        if participants:
            with batcher.participant():
                body()
        else:
            body()

    threads = [threading.Thread(target=worker, args=(i, d)) for i, d in enumerate(delays)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return batches


def test_max_batch_one_runs_every_call_alone():
    assert sorted(run_concurrently(MicroBatcher(max_batch=1), [0, 0, 0], participants=False)) == [
        [0],
        [1],
        [2],
    ]


def test_a_straggler_splits_a_time_window_batch_but_not_a_participant_batch():
    delays = [0.0, 0.0, 0.3]  # the third caller arrives long after the 50 ms window
    window = run_concurrently(MicroBatcher(max_batch=3, max_wait_s=0.05), delays, participants=False)
    assert window == [[0, 1], [2]]
    waited = run_concurrently(MicroBatcher(max_batch=3, max_wait_s=0.05), delays, participants=True)
    assert waited == [[0, 1, 2]]


def test_a_failing_batch_raises_in_every_caller():
    batcher = MicroBatcher(max_batch=2, max_wait_s=0.5)
    errors = []

    def run_batch(requests):
        raise RuntimeError("model failed")

    def worker(index):
        try:
            batcher.submit("k", index, run_batch)
        except RuntimeError as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == ["model failed", "model failed"]
