import assert from "node:assert/strict";
import { Semaphore } from "../../src/scheduler/semaphore.ts";

Deno.test("tryAcquire takes permits up to max", () => {
  const sem = new Semaphore(2);
  assert.equal(sem.tryAcquire(), true);
  assert.equal(sem.tryAcquire(), true);
  assert.equal(sem.tryAcquire(), false);
  assert.equal(sem.inUse, 2);
  sem.release();
  assert.equal(sem.inUse, 1);
  assert.equal(sem.tryAcquire(), true);
});

Deno.test("waiters are served in order and a release hands the permit over", async () => {
  const sem = new Semaphore(1);
  await sem.acquire();
  const order: number[] = [];
  const waiters = [1, 2, 3].map((n) => sem.acquire().then(() => order.push(n)));
  assert.equal(sem.waiting, 3);
  assert.equal(sem.tryAcquire(), false, "no barging past waiters");
  sem.release();
  await waiters[0];
  assert.deepEqual(order, [1]);
  assert.equal(sem.inUse, 1);
  assert.equal(sem.waiting, 2);
  sem.release();
  sem.release();
  await Promise.all(waiters);
  assert.deepEqual(order, [1, 2, 3]);
  assert.equal(sem.inUse, 1);
  sem.release();
  assert.equal(sem.inUse, 0);
  assert.equal(sem.waiting, 0);
});

Deno.test("concurrency never exceeds max", async () => {
  const sem = new Semaphore(3);
  let running = 0;
  let peak = 0;
  const task = async () => {
    await sem.acquire();
    try {
      running++;
      peak = Math.max(peak, running);
      await new Promise((resolve) => setTimeout(resolve, 1));
    } finally {
      running--;
      sem.release();
    }
  };
  await Promise.all(Array.from({ length: 20 }, task));
  assert.equal(peak, 3);
  assert.equal(sem.inUse, 0);
});

Deno.test("an aborted acquire leaves the queue and takes no permit", async () => {
  const sem = new Semaphore(1);
  await sem.acquire();
  const controller = new AbortController();
  const aborted = sem.acquire(controller.signal);
  const next = sem.acquire();
  controller.abort(new Error("shutdown"));
  await assert.rejects(aborted, /shutdown/);
  assert.equal(sem.waiting, 1);
  sem.release();
  await next;
  assert.equal(sem.inUse, 1);
  await assert.rejects(sem.acquire(AbortSignal.abort(new Error("already"))), /already/);
  assert.equal(sem.waiting, 0);
});

Deno.test("release without a permit and invalid max throw", () => {
  assert.throws(() => new Semaphore(1).release(), /without a held permit/);
  for (const max of [0, -1, 1.5, Number.NaN]) {
    assert.throws(() => new Semaphore(max), RangeError);
  }
});
