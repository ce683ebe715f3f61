// namesWorkspace (engine/scratch.ts): `pipe exp run` and `pipe verify` refuse a stage whose command, env or `with:`
// spells out the workspace's absolute path (run in a scratch workspace it would write the real one). A sibling path
// that merely starts with the same characters (`/data/ws.log`, `/data/ws-old/x` beside the workspace `/data/ws`) is
// not the workspace: it was refused, with a message saying it named the workspace.
import { describe, expect, it } from 'vitest';
import type { StageSpec } from '../../engine/model.js';
import { namesWorkspace } from '../../engine/scratch.js';

const stage = (cmd: string, env: Record<string, string> = {}, w?: Record<string, unknown>): StageSpec => ({ name: 's', cmd, env, ...(w ? { with: w } : {}) }) as unknown as StageSpec;

describe('namesWorkspace', () => {
  it('finds the workspace itself or a path inside it', () => {
    expect(namesWorkspace(stage('cat /data/ws/in.txt'), '/data/ws')).toBe('command');
    expect(namesWorkspace(stage('cd /data/ws && make'), '/data/ws')).toBe('command');
    expect(namesWorkspace(stage('cd "/data/ws"; make'), '/data/ws')).toBe('command');
    expect(namesWorkspace(stage('ls /data/ws'), '/data/ws')).toBe('command');
    expect(namesWorkspace(stage('make', { OUT: '/data/ws/out' }), '/data/ws')).toBe('env');
    expect(namesWorkspace(stage('make', {}, { dir: '/data/ws/' }), '/data/ws')).toBe('`with:`');
  });

  it('does not take a sibling path that starts with the same characters for it', () => {
    expect(namesWorkspace(stage('echo x >> /data/ws.log'), '/data/ws')).toBeUndefined();
    expect(namesWorkspace(stage('cat /data/ws-old/in.txt /data/ws2/x'), '/data/ws')).toBeUndefined();
    expect(namesWorkspace(stage('make', { LOG: '/data/ws_1/log' }), '/data/ws')).toBeUndefined();
    expect(namesWorkspace(stage('echo x >> /data/ws.log; cat /data/ws/in.txt'), '/data/ws')).toBe('command');
  });
});
