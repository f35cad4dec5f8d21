"""tower_async._memo.BoundedMemo: bounded by entries and by bytes, least recent out first."""

from __future__ import annotations

import threading

from tower_async._memo import BoundedMemo


def test_entries_bound_drops_the_least_recently_used() -> None:
    memo: BoundedMemo[str] = BoundedMemo(entries=2)
    memo.put("a", "A")
    memo.put("b", "B")
    assert memo.get("a") == (True, "A")  # "a" is now the most recent
    memo.put("c", "C")
    assert memo.get("b") == (False, None)
    assert memo.get("a") == (True, "A") and memo.get("c") == (True, "C") and len(memo) == 2


def test_bytes_bound_and_values_too_big_to_keep() -> None:
    memo: BoundedMemo[bytes] = BoundedMemo(entries=10, max_bytes=10)
    memo.put("a", b"aaaa", 4)
    memo.put("b", b"bbbb", 4)
    memo.put("c", b"cccc", 4)  # 12 bytes: "a" goes
    assert memo.get("a") == (False, None) and len(memo) == 2
    memo.put("huge", b"x" * 11, 11)  # never held, and pushes nothing out
    assert memo.get("huge") == (False, None) and len(memo) == 2
    memo.put("b", b"bb", 2)  # replacing a value counts its new size only
    memo.put("d", b"dddd", 4)
    assert [memo.get(k)[0] for k in "bcd"] == [True, True, True]
    memo.clear()
    assert len(memo) == 0 and memo.get("b") == (False, None)


def test_threads_share_one_memo_without_losing_the_bounds() -> None:
    memo: BoundedMemo[int] = BoundedMemo(entries=50, max_bytes=400)

    def work(base: int) -> None:
        for i in range(2000):
            memo.put((base, i % 80), i, 3)
            memo.get((base, (i * 7) % 80))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(memo) <= 50 and memo._bytes <= 400
    assert memo._bytes == 3 * len(memo)
