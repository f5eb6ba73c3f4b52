// The installed system as seen from the provisioning host: the new deployment's root and
// its stateroot's /var (an OSTree deployment's /var is empty until boot bind-mounts it).
// Paths of the installed system resolve here, following its own symlinks (/home →
// var/home, /root → var/roothome) inside it, never out to the provisioning host: every
// `..`, of the path or of a link, stops at the installed system's root.
import { lstatSync, readlinkSync } from 'node:fs';
import { mkdir, chown, chmod, readFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { atomicWriteFile } from '../core/atomic-write.js';

export class Target {
  constructor(
    /** The deployment root (…/ostree/deploy/OS/deploy/CHECKSUM.SERIAL). */
    readonly root: string,
    /** The stateroot's var (…/ostree/deploy/OS/var). */
    readonly varDir: string,
  ) {}

  /** Where an absolute path of the installed system lies on the provisioning host. */
  resolve(path: string): string {
    const parts = posix.normalize(path).split('/').filter(Boolean);
    const done: string[] = [];
    for (let hops = 0; parts.length; ) {
      const name = parts.shift()!;
      if (name === '..') {
        done.pop();
        continue;
      }
      const here = this.#host([...done, name]);
      let st;
      try {
        st = lstatSync(here);
      } catch {
        // Not there (yet): the rest is resolved by name, `..` never climbing above the root.
        done.push(name);
        continue;
      }
      if (st.isSymbolicLink()) {
        if (++hops > 40) throw new Error(`too many symbolic links resolving ${path} in the installed system`);
        const link = readlinkSync(here);
        const rest = link.split('/').filter(Boolean);
        if (link.startsWith('/')) done.length = 0;
        parts.unshift(...rest);
        continue;
      }
      done.push(name);
    }
    return this.#host(done);
  }

  #host(parts: string[]): string {
    return parts[0] === 'var' ? join(this.varDir, ...parts.slice(1)) : join(this.root, ...parts);
  }

  async read(path: string): Promise<string | null> {
    try {
      return await readFile(this.resolve(path), 'utf8');
    } catch {
      return null;
    }
  }

  async write(path: string, content: string, opts: { mode?: number; uid?: number; gid?: number } = {}): Promise<void> {
    const host = this.resolve(path);
    await mkdir(posix.dirname(host), { recursive: true });
    await atomicWriteFile(host, content, { mode: opts.mode ?? 0o644 });
    if (opts.uid !== undefined) await chown(host, opts.uid, opts.gid ?? opts.uid);
  }

  async mkdir(path: string, opts: { mode?: number; uid?: number; gid?: number } = {}): Promise<string> {
    const host = this.resolve(path);
    await mkdir(host, { recursive: true });
    if (opts.mode !== undefined) await chmod(host, opts.mode);
    if (opts.uid !== undefined) await chown(host, opts.uid, opts.gid ?? opts.uid);
    return host;
  }
}
