// The error classes: one class each whether imported from core/errors or from the OSTree
// bridge's own module, instanceof that tells the kinds apart, and the root class
// recognised across a duplicate copy of the module.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as core from '../../core/errors.js';
import * as bridge from '../../ostree-bridge/errors.js';

test('core/errors re-exports the bridge classes themselves', () => {
  for (const name of ['AtomhostError', 'CancelledError', 'InvalidSysrootError', 'NotFoundError', 'SysrootLockedError'] as const) assert.equal(core[name], bridge[name], name);
  const err = new bridge.SysrootLockedError('/sysroot');
  assert.ok(err instanceof core.SysrootLockedError);
  assert.ok(err instanceof core.AtomhostError);
  assert.equal(core.exitCodeFor(err), core.EXIT.LOCKED);
});

test('instanceof tells the kinds apart: another AtomhostError is not a NotFoundError', () => {
  const corrupt = new core.AtomhostError('AH_ERR_CORRUPT', 'revision record x does not match its id');
  assert.ok(corrupt instanceof core.AtomhostError);
  for (const cls of [core.NotFoundError, core.CancelledError, core.SysrootLockedError, core.InvalidSysrootError, core.UnhealthyError, core.InvalidArgumentError, core.NoUpdateError]) {
    assert.equal(corrupt instanceof cls, false, `an AH_ERR_CORRUPT error passed as ${cls.name}`);
  }
  assert.equal(new core.NotFoundError('x') instanceof core.CancelledError, false);
  assert.ok(new core.NotFoundError('x') instanceof core.NotFoundError);
  assert.equal(new Error('plain') instanceof core.AtomhostError, false);
  assert.equal((null as unknown) instanceof core.AtomhostError, false);
});

test('an AtomhostError from a second copy of the module is still an AtomhostError', async () => {
  const copy = (await import(`../../ostree-bridge/errors.js?copy=${Date.now()}`)) as typeof bridge;
  assert.notEqual(copy.AtomhostError, bridge.AtomhostError);
  const err = new copy.NotFoundError('revision x has no record');
  assert.ok(err instanceof core.AtomhostError);
  assert.equal(core.exitCodeFor(new copy.SysrootLockedError('/s')), core.EXIT.LOCKED);
});
