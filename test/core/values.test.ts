// The one place where values reach unit files, templates, JSON configs and kernel
// arguments: hostile values are refused or escaped, Atomic's raw JSON fragments still work.
import test from 'node:test';
import assert from 'node:assert/strict';
import { checkKarg, checkProbe, checkRole, checkValues, renderTemplate } from '../../core/values.js';
import { editKargs } from '../../core/kargs.js';

test('config.json.template: a value inside a JSON string is escaped; a raw fragment still parses or is refused', () => {
  const tpl = '{"process": {"args": ["/bin/etcd", "--name", "$NAME"]}, "mounts": [ {"destination": "/a"} $ADDTL_MOUNTS ]}';
  const out = renderTemplate(tpl, { NAME: 'x", "--evil": "1', ADDTL_MOUNTS: ', {"destination": "/b"}' }, 'img:/exports/config.json.template', 'json');
  const j = JSON.parse(out) as { process: { args: string[] }; mounts: unknown[]; '--evil'?: string };
  assert.equal(j.process.args[2], 'x", "--evil": "1', 'the quote stays inside the string');
  assert.equal(j.mounts.length, 2, 'the raw fragment adds a mount, as Atomic did');
  assert.throws(() => renderTemplate(tpl, { NAME: 'x', ADDTL_MOUNTS: '], "root": {' }, 'img:/exports/config.json.template', 'json'), /not JSON/);
});

test('service.template and tmpfiles.template: no value brings a newline; % is not expanded by systemd', () => {
  const unit = '[Service]\nExecStart=/bin/run $ARGS\n';
  assert.throws(() => renderTemplate(unit, { ARGS: 'ok\nExecStartPre=/bin/touch /tmp/pwned' }, 'img:/exports/service.template', 'unit'), /newline/);
  assert.equal(renderTemplate(unit, { ARGS: '--home=%h' }, 'f', 'unit'), '[Service]\nExecStart=/bin/run --home=%%h\n');
  assert.throws(() => renderTemplate('d $DIR 0700 - - -\n', { DIR: '/var/lib/x 0700 - - -\nL+ /etc/shadow' }, 'img:/exports/tmpfiles.template', 'lines'), /newline/);
  assert.throws(() => renderTemplate('$A', {}, 'f', 'unit'), /no value for \$A/);
});

test('roles, --set names, probes and kernel arguments are checked, naming the field', () => {
  assert.throws(() => checkRole('network\nExecStartPre=/bin/sh'), /invalid role/);
  checkRole('kubelet');
  assert.throws(() => checkValues({ 'A B': 'x' }), /a name is letters/);
  assert.throws(() => checkProbe({ http: 'file:///etc/shadow' }), /http\(s\)/);
  assert.throws(() => checkProbe({ command: 'rm -rf /' }), /list of strings|command/);
  assert.deepEqual(checkProbe({ command: ['/bin/true'] }), { command: ['/bin/true'] });
  for (const bad of ['a b', 'quiet\ninit=/bin/sh', 'x="unterminated', '']) assert.throws(() => checkKarg('append', bad), /not a kernel argument/);
  checkKarg('append', 'dyndbg="file foo.c +p"');
  assert.throws(() => editKargs(['root=UUID=1', 'console=tty0'], { replace: ['console=tty0 init=/bin/sh'] }), /not a kernel argument/);
  assert.deepEqual(editKargs(['root=UUID=1', 'console=tty0'], { replace: ['console=ttyS0'] }), ['root=UUID=1', 'console=ttyS0']);
});
