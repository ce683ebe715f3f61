import { describe, expect, it } from 'vitest';
import { mapPool, Slicer } from '../../cache/pool.js';

describe('mapPool', () => {
  it('keeps order and never exceeds the limit', async () => {
    let active = 0;
    let peak = 0;
    const out = await mapPool([5, 1, 4, 2, 3, 0, 6], 3, async (x) => {
      active++;
      peak = Math.max(peak, active);
      await new Promise((r) => setTimeout(r, x));
      active--;
      return x * 10;
    });
    expect(out).toEqual([50, 10, 40, 20, 30, 0, 60]);
    expect(peak).toBe(3);
    expect(await mapPool([], 4, async () => 1)).toEqual([]);
  });
});

describe('Slicer', () => {
  it('lets timers run during a long synchronous loop (how hashing, put and restore stay responsive)', async () => {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const slicer = new Slicer(10);
    const end = Date.now() + 120;
    while (Date.now() < end) {
      for (let i = 0; i < 1000; i++) Math.sqrt(i); // busy, synchronous work
      await slicer.tick();
    }
    clearInterval(timer);
    expect(ticks).toBeGreaterThanOrEqual(3);

    // Without ticks the same loop starves the timer completely.
    let starved = 0;
    const t2 = setInterval(() => starved++, 1);
    const end2 = Date.now() + 60;
    while (Date.now() < end2) Math.sqrt(2);
    await Promise.resolve();
    clearInterval(t2);
    expect(starved).toBe(0);
  });
});
