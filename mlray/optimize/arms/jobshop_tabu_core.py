"""The compiled inner loop of the job-shop tabu arm (numba, ``nogil``: walkers run on threads of one process).

A schedule is the disjunctive graph: operations ``0..N-1`` (job by job), job arcs
``job_prev``/``job_next`` (fixed) and machine arcs ``machine_prev``/``machine_next`` (the
order on each machine, what the search changes). ``evaluate`` orders the graph
topologically and computes every operation's head (earliest start) and tail (longest
path after its end), so ``head + duration + tail`` is the longest path through it and
the largest such value is the makespan.

The search is tabu search over the N5 neighbourhood of Nowicki and Smutnicki (1996):
one critical path, cut into blocks of operations on one machine; a move swaps the first
two operations of a block (not in the first block) or the last two (not in the last
block). Such a swap never creates a cycle. Moves are ranked by the estimate of
Taillard (1994) from the heads and tails of the swapped pair, the chosen move is
applied and the graph re-evaluated exactly. A swapped pair may not be swapped back for
a random tenure, unless the move's estimate beats the best makespan (aspiration).
After ``stall`` iterations without a new best the walk restarts from its best schedule
shaken by a few random swaps of adjacent critical operations (also cycle-free).
When N5 has no move, the critical path lies on one machine or in one job: the
makespan equals a lower bound and the schedule is optimal.

Compiling (``cache=True``): about 3.6 s on first use with an empty cache, 0.3 s when loaded from
numba's cache (``__pycache__`` beside this file), measured here; the arm pays it in its constructor,
before the search clock starts.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# state[] slots shared with the Python side (jobshop_tabu.py)
ITERATION, SINCE_BEST, BEST, CURRENT, RESTARTS, SEEDED, OPTIMAL = range(7)
STATE_SIZE = 8
# params[] slots
TENURE_MIN, TENURE_SPAN, STALL, SHAKE, SEED = range(5)
PARAMS_SIZE = 5


@njit(cache=True, nogil=True)
def evaluate(duration, job_prev, job_next, machine_prev, machine_next, head, tail, order, indegree):
    """Heads, tails and a topological order in place; the makespan, or -1 if the graph has a cycle."""
    n = duration.shape[0]
    filled = 0
    for v in range(n):
        degree = (job_prev[v] >= 0) + (machine_prev[v] >= 0)
        indegree[v] = degree
        if degree == 0:
            order[filled] = v
            filled += 1
    taken = 0
    while taken < filled:
        v = order[taken]
        taken += 1
        s = job_next[v]
        if s >= 0:
            indegree[s] -= 1
            if indegree[s] == 0:
                order[filled] = s
                filled += 1
        s = machine_next[v]
        if s >= 0:
            indegree[s] -= 1
            if indegree[s] == 0:
                order[filled] = s
                filled += 1
    if filled < n:
        return -1
    for i in range(n):
        v = order[i]
        earliest = 0
        u = job_prev[v]
        if u >= 0:
            earliest = head[u] + duration[u]
        u = machine_prev[v]
        if u >= 0 and head[u] + duration[u] > earliest:
            earliest = head[u] + duration[u]
        head[v] = earliest
    makespan = 0
    for i in range(n - 1, -1, -1):
        v = order[i]
        after = 0
        s = job_next[v]
        if s >= 0:
            after = tail[s] + duration[s]
        s = machine_next[v]
        if s >= 0 and tail[s] + duration[s] > after:
            after = tail[s] + duration[s]
        tail[v] = after
        if head[v] + duration[v] + after > makespan:
            makespan = head[v] + duration[v] + after
    return makespan


@njit(cache=True, nogil=True)
def critical_path(duration, job_next, machine_next, head, tail, makespan, path):
    """One critical path from a source to a sink, ties broken at random; its length."""
    n = duration.shape[0]
    v = -1
    seen = 0
    for u in range(n):
        if head[u] == 0 and duration[u] + tail[u] == makespan:
            seen += 1
            if np.random.randint(seen) == 0:
                v = u
    length = 0
    while v >= 0:
        path[length] = v
        length += 1
        end = head[v] + duration[v]
        a = job_next[v]
        b = machine_next[v]
        a_ok = a >= 0 and head[a] == end and end + duration[a] + tail[a] == makespan
        b_ok = b >= 0 and head[b] == end and end + duration[b] + tail[b] == makespan
        if a_ok and b_ok:
            v = a if np.random.randint(2) == 0 else b
        elif a_ok:
            v = a
        elif b_ok:
            v = b
        else:
            v = -1
    return length


@njit(cache=True, nogil=True)
def n5_moves(machine, path, length, moves):
    """The N5 swaps on the path, as the first operation of each swapped pair; their number."""
    blocks = 1
    for i in range(1, length):
        if machine[path[i]] != machine[path[i - 1]]:
            blocks += 1
    count = 0
    block = 0
    first = 0
    for i in range(1, length + 1):
        if i == length or machine[path[i]] != machine[path[i - 1]]:
            last = i - 1
            if last > first:
                if block > 0:
                    moves[count] = path[first]
                    count += 1
                if block < blocks - 1 and (last - 1 != first or block == 0):
                    moves[count] = path[last - 1]
                    count += 1
            block += 1
            first = i
    return count


@njit(cache=True, nogil=True)
def swap_estimate(u, duration, job_prev, job_next, machine_prev, machine_next, head, tail):
    """Taillard's estimate of the makespan after swapping ``u`` with its machine successor.

    Heads forward, tails backward, written out: the same through a shared helper ran 5x slower here."""
    v = machine_next[u]
    before = machine_prev[u]
    after = machine_next[v]
    head_v = 0
    x = job_prev[v]
    if x >= 0:
        head_v = head[x] + duration[x]
    if before >= 0 and head[before] + duration[before] > head_v:
        head_v = head[before] + duration[before]
    head_u = head_v + duration[v]
    x = job_prev[u]
    if x >= 0 and head[x] + duration[x] > head_u:
        head_u = head[x] + duration[x]
    tail_u = 0
    x = job_next[u]
    if x >= 0:
        tail_u = tail[x] + duration[x]
    if after >= 0 and tail[after] + duration[after] > tail_u:
        tail_u = tail[after] + duration[after]
    tail_v = tail_u + duration[u]
    x = job_next[v]
    if x >= 0 and tail[x] + duration[x] > tail_v:
        tail_v = tail[x] + duration[x]
    return max(head_v + duration[v] + tail_v, head_u + duration[u] + tail_u)


@njit(cache=True, nogil=True)
def swap(u, machine_prev, machine_next):
    """Swap ``u`` with its machine successor ``v``: ... a u v b ... becomes ... a v u b ..."""
    v = machine_next[u]
    a = machine_prev[u]
    b = machine_next[v]
    machine_prev[v] = a
    if a >= 0:
        machine_next[a] = v
    machine_next[v] = u
    machine_prev[u] = v
    machine_next[u] = b
    if b >= 0:
        machine_prev[b] = u


@njit(cache=True, nogil=True)
def shake(duration, machine, job_prev, job_next, machine_prev, machine_next, head, tail, order, indegree,
          path, swaps):
    """``swaps`` random swaps of adjacent operations of one machine on a critical path; the makespan."""
    makespan = evaluate(duration, job_prev, job_next, machine_prev, machine_next, head, tail, order, indegree)
    for _ in range(swaps):
        length = critical_path(duration, job_next, machine_next, head, tail, makespan, path)
        pairs = 0
        for i in range(length - 1):
            if machine[path[i]] == machine[path[i + 1]]:
                pairs += 1
        if pairs == 0:
            break
        pick = np.random.randint(pairs)
        for i in range(length - 1):
            if machine[path[i]] == machine[path[i + 1]]:
                if pick == 0:
                    swap(path[i], machine_prev, machine_next)
                    break
                pick -= 1
        makespan = evaluate(
            duration, job_prev, job_next, machine_prev, machine_next, head, tail, order, indegree
        )
    return makespan


@njit(cache=True, nogil=True)
def tabu_search(duration, machine, job_prev, job_next, machine_prev, machine_next, best_prev, best_next,
                tabu, head, tail, order, indegree, path, moves, state, params, iterations):
    """Run ``iterations`` tabu iterations from the current order (``machine_prev/next``), keeping the
    best order in ``best_prev/next`` and the counters in ``state``; resumable call after call."""
    n = duration.shape[0]
    if state[SEEDED] == 0:
        np.random.seed(params[SEED])
        state[SEEDED] = 1
        state[CURRENT] = evaluate(
            duration, job_prev, job_next, machine_prev, machine_next, head, tail, order, indegree
        )
        if state[BEST] < 0 or state[CURRENT] < state[BEST]:
            state[BEST] = state[CURRENT]
            best_prev[:] = machine_prev
            best_next[:] = machine_next
    makespan = state[CURRENT]
    for _ in range(iterations):
        it = state[ITERATION]
        state[ITERATION] = it + 1
        length = critical_path(duration, job_next, machine_next, head, tail, makespan, path)
        count = n5_moves(machine, path, length, moves)
        if count == 0:
            state[OPTIMAL] = 1  # the critical path is one machine's or one job's: a lower bound
            break
        chosen = -1
        chosen_value = 0
        ties = 0
        for k in range(count):
            u = moves[k]
            v = machine_next[u]
            value = swap_estimate(u, duration, job_prev, job_next, machine_prev, machine_next, head, tail)
            # tabu[x * n + y] > it: "x before y" was undone lately; the swap would make v precede u.
            if tabu[v * n + u] > it and value >= state[BEST]:
                continue
            if chosen < 0 or value < chosen_value:
                chosen, chosen_value, ties = u, value, 1
            elif value == chosen_value:
                ties += 1
                if np.random.randint(ties) == 0:
                    chosen = u
        if chosen < 0:
            chosen = moves[np.random.randint(count)]  # every move tabu: take one at random
        v = machine_next[chosen]
        swap(chosen, machine_prev, machine_next)
        # Now v precedes chosen; forbid putting chosen back before v for a while.
        tabu[chosen * n + v] = it + 1 + params[TENURE_MIN] + np.random.randint(params[TENURE_SPAN] + 1)
        makespan = evaluate(
            duration, job_prev, job_next, machine_prev, machine_next, head, tail, order, indegree
        )
        if makespan < state[BEST]:
            state[BEST] = makespan
            state[SINCE_BEST] = 0
            best_prev[:] = machine_prev
            best_next[:] = machine_next
        else:
            state[SINCE_BEST] += 1
            if state[SINCE_BEST] >= params[STALL]:
                machine_prev[:] = best_prev
                machine_next[:] = best_next
                makespan = shake(duration, machine, job_prev, job_next, machine_prev, machine_next, head,
                                 tail, order, indegree, path, params[SHAKE])
                state[SINCE_BEST] = 0
                state[RESTARTS] += 1
    state[CURRENT] = makespan
    return state[BEST]
