// Two `atomhost fleetlock serve` processes on one 3-member etcd cluster: twenty nodes asking at
// once never get more than the slots (checked at every etcd revision, not only at the end),
// and after one member is killed the locks still work. Also `atomhost fleetlock status`.
import test from 'node:test';
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { etcdOrSkip, holdersInEtcd, serveProcess, stopServeProcess, type ServeProcess } from './helpers.js';
import { FleetLockClient } from '../../fleet/client.js';
import { EtcdClient, prefixEnd } from '../../fleet/etcd.js';
import { KEY_ROOT } from '../../fleet/semaphore.js';

const CLI = 'dist/cli/main.js';

/** The server as a process, 2 slots a group, on the given members in the given order. */
const serve = (etcd: string[], extra: string[] = []) => serveProcess(['--etcd', etcd.join(','), '--slots', '2', '--lock-ttl', '60s', ...extra]);

/** The most holders any group prefix ever had, revision by revision, from etcd's own history. */
async function maxHoldersInHistory(etcdUrls: string[], group: string, from: number): Promise<number> {
  const c = new EtcdClient(etcdUrls);
  const prefix = `${KEY_ROOT}${group}/holders/`;
  const { revision: to } = await c.range(prefix, prefixEnd(prefix));
  let max = 0;
  for (let rev = from; rev <= to; rev++) max = Math.max(max, (await c.range(prefix, prefixEnd(prefix), rev)).kvs.length);
  return max;
}

test('two servers, one 3-member etcd: slots never exceeded, and one member lost changes nothing', async (t) => {
  const etcd = await etcdOrSkip(t, 3);
  if (!etcd) return;
  const E = etcd.clientUrls;
  const servers: ServeProcess[] = [];
  try {
    servers.push(await serve(E), await serve([...E].reverse()));
    const nodes = Array.from({ length: 20 }, (_, i) => new FleetLockClient({ baseUrl: servers[i % 2]!.url, id: `node-${String(i).padStart(2, '0')}`, group: 'race' }));

    await t.test('20 nodes at once against 2 slots: exactly 2 granted, in every round', async () => {
      for (let round = 0; round < 3; round++) {
        const got = await Promise.all(nodes.map((n) => n.preReboot()));
        assert.equal(got.filter(Boolean).length, 2, `round ${round}: ${got}`);
        const winners = nodes.map((_, i) => `node-${String(i).padStart(2, '0')}`).filter((_, i) => got[i]);
        assert.deepEqual(await holdersInEtcd(E, 'race'), winners, `round ${round}`);
        await Promise.all(nodes.map((n) => n.steadyState()));
        assert.deepEqual(await holdersInEtcd(E, 'race'), []);
      }
    });

    const churn = async (seconds: number) => {
      const start = (await new EtcdClient(E).range('x')).revision;
      const end = Date.now() + seconds * 1000;
      let grants = 0;
      await Promise.all(
        nodes.map(async (n) => {
          while (Date.now() < end) {
            if (await n.preReboot()) {
              grants++;
              await n.preReboot(); // a holder asking again
              await n.steadyState();
            }
          }
        }),
      );
      return { start, grants };
    };

    await t.test('20 nodes locking and releasing for 2 s: at no etcd revision more than 2 holders', async () => {
      const { start, grants } = await churn(2);
      assert.ok(grants >= 4, `the slots changed hands (${grants} grants)`);
      const max = await maxHoldersInHistory(E, 'race', start);
      assert.ok(max >= 1 && max <= 2, `most holders at one revision: ${max}`);
    });

    await t.test('one etcd member killed: grants, refusals and releases still work through both servers', async () => {
      await etcd.kill(0); // first in server 0's list, last in server 1's
      const got = await Promise.all(nodes.map((n) => n.preReboot()));
      assert.equal(got.filter(Boolean).length, 2, String(got));
      assert.equal((await holdersInEtcd(E.slice(1), 'race')).length, 2);
      await Promise.all(nodes.map((n) => n.steadyState()));
      assert.deepEqual(await holdersInEtcd(E.slice(1), 'race'), []);
      const { start, grants } = await churn(1);
      assert.ok(grants >= 2, `${grants} grants`);
      const max = await maxHoldersInHistory(E.slice(1), 'race', start);
      assert.ok(max >= 1 && max <= 2, `most holders at one revision: ${max}`);
    });

    await t.test('atomhost fleetlock status lists holders with age and lease left (text and --json)', async () => {
      assert.equal(await nodes[3]!.preReboot(), true);
      assert.equal(await new FleetLockClient({ baseUrl: servers[1]!.url, id: 'solo', group: 'other' }).preReboot(), true);
      const j = await execa(process.execPath, [CLI, 'fleetlock', 'status', '--etcd', E.join(','), '--json']);
      const doc = JSON.parse(j.stdout) as { groups: { group: string; slots: number; holders: { id: string; ageSeconds: number; leaseLeftSeconds: number; since: string }[] }[] };
      const race = doc.groups.find((g) => g.group === 'race')!;
      assert.equal(race.slots, 2);
      assert.deepEqual(race.holders.map((h) => h.id), ['node-03']);
      assert.ok(race.holders[0]!.leaseLeftSeconds > 50 && race.holders[0]!.leaseLeftSeconds <= 60, JSON.stringify(race));
      assert.ok(race.holders[0]!.ageSeconds >= 0 && race.holders[0]!.ageSeconds < 30);
      assert.deepEqual(doc.groups.find((g) => g.group === 'other')!.holders.map((h) => h.id), ['solo']);
      const text = await execa(process.execPath, [CLI, 'fleetlock', 'status', '--etcd', E.join(',')]);
      assert.match(text.stdout, /^group race: 1\/2 slots held$/m);
      assert.match(text.stdout, /^ {2}node-03 {2}held \d+s {2}lease left \d+s$/m);
      assert.match(text.stdout, /^group other: 1\/2 slots held$/m);
      // Each decision is one line on the server's stdout.
      assert.ok(servers.some((s) => s.out.some((l) => /^fleetlock: pre-reboot group=race id=node-03 granted/.test(l))));
    });
  } catch (err) {
    (err as Error).message += `\nserver output:\n${servers.map((s) => s.out.slice(-10).join('\n')).join('\n---\n')}\netcd logs:\n${etcd.logs()}`;
    throw err;
  } finally {
    await Promise.all(servers.map(stopServeProcess));
    await etcd.stop();
  }
});

test('atomhost fleetlock serve refuses bad flags naming the flag, before listening', async () => {
  const cases: [string[], RegExp][] = [
    [['--slots', '0'], /--slots "0"/],
    [['--slots', '2', '--lock-ttl', '1x'], /--lock-ttl "1x"/],
    [['--slots', '2', '--lock-ttl', '1s'], /between 2 s/],
    [['--slots', '2', '--group', 'a/b=1'], /--group "a\/b=1"/],
    [['--slots', '2', '--token-file', '/nonexistent/token'], /--token-file \/nonexistent\/token: ENOENT/],
  ];
  for (const [flags, want] of cases) {
    const r = await execa(process.execPath, [CLI, 'fleetlock', 'serve', '--listen', '127.0.0.1:1', '--etcd', 'http://127.0.0.1:1', ...flags], { reject: false, timeout: 10_000 });
    assert.equal(r.exitCode, 2, `${flags.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, want);
  }
  const r = await execa(process.execPath, [CLI, 'fleetlock', 'serve', '--listen', 'nope', '--etcd', 'ftp://x', '--slots', '1'], { reject: false });
  assert.equal(r.exitCode, 2);
  assert.match(r.stderr, /--listen "nope"/);
});
