// Users, groups, the root password and SSH keys of the installed system, written into its
// /etc/passwd, /etc/group and /etc/shadow (as useradd --root would) with hashed passwords.
// Plain-text passwords are hashed here (SHA-512 crypt through openssl, read on stdin so that
// they never appear in a process list) and are never logged.
import { runOk } from '../core/exec.js';
import type { Target } from './target.js';
import type { Kickstart } from './types.js';

interface Db {
  passwd: string[][];
  group: string[][];
  shadow: string[][];
  gshadow: string[][] | null;
}

const split = (text: string | null, fields: number) =>
  (text ?? '')
    .split('\n')
    .filter((l) => l.trim() && !l.startsWith('#'))
    .map((l) => {
      const f = l.split(':');
      while (f.length < fields) f.push('');
      return f;
    });
const join = (rows: string[][]) => rows.map((r) => r.join(':')).join('\n') + (rows.length ? '\n' : '');

export async function hashPassword(plain: string): Promise<string> {
  return (await runOk('openssl', ['passwd', '-6', '-stdin'], { input: `${plain}\n` })).trim();
}

function nextId(used: Set<number>, from = 1000): number {
  let id = from;
  while (used.has(id)) id++;
  return id;
}

/** Applies rootpw, user and sshkey; returns what was done, for the summary. */
export async function applyAccounts(ks: Kickstart, t: Target): Promise<string[]> {
  if (!ks.rootpw && ks.users.length === 0 && ks.sshkeys.length === 0) return [];
  const done: string[] = [];
  const gshadowText = await t.read('/etc/gshadow');
  const db: Db = {
    passwd: split(await t.read('/etc/passwd'), 7),
    group: split(await t.read('/etc/group'), 4),
    shadow: split(await t.read('/etc/shadow'), 9),
    gshadow: gshadowText === null ? null : split(gshadowText, 4),
  };
  const days = Math.floor(Date.now() / 86_400_000);
  const shadowOf = (name: string) => {
    let row = db.shadow.find((r) => r[0] === name);
    if (!row) {
      row = [name, '!', String(days), '0', '99999', '7', '', '', ''];
      db.shadow.push(row);
    }
    return row;
  };
  for (const p of db.passwd) shadowOf(p[0]);

  if (ks.rootpw) {
    const r = ks.rootpw;
    const row = shadowOf('root');
    if (r.lock && !r.password) row[1] = '!';
    else {
      const hash = r.iscrypted ? r.password! : await hashPassword(r.password!);
      row[1] = r.lock ? `!${hash}` : hash;
    }
    row[2] = String(days);
    done.push(r.lock ? 'root account locked' : 'root password set (hashed)');
  }

  // group lines come first, as in Anaconda, so that users can join them.
  for (const g of ks.groups) {
    if (db.group.some((x) => x[0] === g.name)) {
      done.push(`group ${g.name} exists in the image`);
      continue;
    }
    const gids = new Set(db.group.map((x) => Number(x[2])));
    if (g.gid !== null && gids.has(g.gid)) throw new Error(`${g.at.file}:${g.at.line}: group: gid ${g.gid} is already used in the image`);
    const gid = g.gid ?? nextId(gids);
    db.group.push([g.name, 'x', String(gid), '']);
    db.gshadow?.push([g.name, '!', '', '']);
    done.push(`group ${g.name} (gid ${gid}) created`);
  }
  for (const u of ks.users) {
    if (db.passwd.some((p) => p[0] === u.name)) {
      done.push(`user ${u.name} exists in the image; its password and groups were updated`);
    } else {
      const uids = new Set(db.passwd.map((p) => Number(p[2])));
      const gids = new Set(db.group.map((g) => Number(g[2])));
      const uid = u.uid ?? nextId(uids);
      let gid = u.gid ?? (gids.has(uid) ? nextId(gids) : uid);
      const own = db.group.find((g) => g[0] === u.name);
      if (own) gid = Number(own[2]);
      else {
        db.group.push([u.name, 'x', String(gid), '']);
        db.gshadow?.push([u.name, '!', '', '']);
      }
      const home = u.homedir ?? `/home/${u.name}`;
      db.passwd.push([u.name, 'x', String(uid), String(gid), u.gecos ?? '', home, u.shell ?? '/bin/bash']);
      // Skeleton of the home directory, owned by the user (under /var/home on OSTree systems).
      await t.mkdir(home, { mode: 0o700, uid, gid });
      done.push(`user ${u.name} (uid ${uid}) created with home ${home}`);
    }
    const row = shadowOf(u.name);
    if (u.password !== null) {
      const hash = u.iscrypted ? u.password : await hashPassword(u.password);
      row[1] = u.lock ? `!${hash}` : hash;
    } else if (u.lock) row[1] = '!';
    for (const g of u.groups) {
      let grp = db.group.find((x) => x[0] === g);
      if (!grp) {
        // Anaconda creates supplementary groups the image lacks.
        grp = [g, 'x', String(nextId(new Set(db.group.map((x) => Number(x[2]))))), ''];
        db.group.push(grp);
        db.gshadow?.push([g, '!', '', '']);
      }
      const members = grp[3] ? grp[3].split(',') : [];
      if (!members.includes(u.name)) grp[3] = [...members, u.name].join(',');
      const gs = db.gshadow?.find((x) => x[0] === g);
      if (gs) {
        const m = gs[3] ? gs[3].split(',') : [];
        if (!m.includes(u.name)) gs[3] = [...m, u.name].join(',');
      }
    }
  }

  await t.write('/etc/passwd', join(db.passwd));
  await t.write('/etc/group', join(db.group));
  await t.write('/etc/shadow', join(db.shadow), { mode: 0o000 });
  if (db.gshadow) await t.write('/etc/gshadow', join(db.gshadow), { mode: 0o000 });

  const keysByUser = new Map<string, string[]>();
  for (const k of ks.sshkeys) keysByUser.set(k.username, [...(keysByUser.get(k.username) ?? []), k.key]);
  for (const [name, keys] of keysByUser) {
    const p = db.passwd.find((x) => x[0] === name);
    if (!p) throw new Error(`sshkey --username=${name}: no such user in the image or the kickstart`);
    const [uid, gid, home] = [Number(p[2]), Number(p[3]), p[5] || (name === 'root' ? '/root' : `/home/${name}`)];
    if (name === 'root') await t.mkdir(home, { mode: 0o700, uid, gid });
    await t.mkdir(`${home}/.ssh`, { mode: 0o700, uid, gid });
    const existing = (await t.read(`${home}/.ssh/authorized_keys`)) ?? '';
    const text = existing + keys.filter((k) => !existing.includes(k)).map((k) => `${k}\n`).join('');
    await t.write(`${home}/.ssh/authorized_keys`, text, { mode: 0o600, uid, gid });
    done.push(`${keys.length} SSH key${keys.length > 1 ? 's' : ''} for ${name}`);
  }
  return done;
}
