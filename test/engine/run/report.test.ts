// Report: every stage ends once, the run's end counts those ends.
import { describe, expect, it } from 'vitest';
import { errorReason, ReasonError, RunReport } from '../../../engine/run/report.js';
import { recorder } from './fixture.js';

describe('RunReport', () => {
  it('emits one stage-end per stage; a second end of the same stage is ignored', () => {
    const r = recorder();
    const report = new RunReport(r.emit);
    expect(report.end({ stage: 'a', status: 'ran', code: 'never-ran', reason: 'new stage', durationMs: 5, key: 'k1' }, { logFile: '/x.log' })).toBe(true);
    expect(report.end({ stage: 'a', status: 'failed', code: 'error', reason: 'late error', durationMs: 6 })).toBe(false);
    expect(r.events).toEqual([{ type: 'stage-end', stage: 'a', status: 'ran', code: 'never-ran', reason: 'new stage', durationMs: 5, key: 'k1', logFile: '/x.log' }]);
    expect(report.get('a')?.status).toBe('ran');
  });

  it('closes with counts; ok only when nothing failed, was cancelled or skipped', () => {
    const r = recorder();
    const report = new RunReport(r.emit);
    report.end({ stage: 'a', status: 'ran', code: 'never-ran', reason: '', durationMs: 0 });
    report.end({ stage: 'b', status: 'up-to-date', code: 'up-to-date', reason: '', durationMs: 0 });
    report.end({ stage: 'c', status: 'restored', code: 'same-inputs', reason: '', durationMs: 0 });
    const ok = report.close(false);
    expect(ok.ok).toBe(true);
    expect(ok.counts).toEqual({ ran: 1, 'up-to-date': 1, restored: 1, failed: 0, cancelled: 0, skipped: 0 });

    const r2 = recorder();
    const bad = new RunReport(r2.emit);
    bad.end({ stage: 'a', status: 'ran', code: 'never-ran', reason: '', durationMs: 0 });
    bad.end({ stage: 'b', status: 'skipped', code: 'upstream-failed', reason: 'upstream stage x failed', durationMs: 0 });
    const s = bad.close(true);
    expect(s).toMatchObject({ ok: false, interrupted: true });
    const end = r2.events.at(-1)!;
    expect(end).toMatchObject({ type: 'run-end', ok: false, interrupted: true, counts: { ran: 1, skipped: 1 } });
  });

  it('an error becomes an end code: a ReasonError keeps its code, anything else is `error`; both keep their words', () => {
    expect(errorReason(new ReasonError('out-refused', 'out x resolves outside'))).toEqual({ code: 'out-refused', text: 'out x resolves outside' });
    expect(errorReason(new Error('EIO: i/o error'))).toEqual({ code: 'error', text: 'EIO: i/o error' });
    expect(errorReason('thrown string')).toEqual({ code: 'error', text: 'thrown string' });
  });
});
