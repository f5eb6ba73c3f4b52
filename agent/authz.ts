// Who may change the host: root, or a caller polkit authorizes for io.atomhost.manage.
// Without a running polkit, only root.
import dbus from 'dbus-next';
import { AtomhostError } from '../core/errors.js';

const { Message } = dbus;
export const POLKIT_ACTION = 'io.atomhost.manage';

async function call(bus: dbus.MessageBus, destination: string, path: string, iface: string, member: string, signature: string, body: unknown[]): Promise<unknown[]> {
  const reply = await bus.call(new Message({ destination, path, interface: iface, member, signature, body }));
  return (reply?.body ?? []) as unknown[];
}

async function callerUid(bus: dbus.MessageBus, sender: string): Promise<number> {
  const [uid] = await call(bus, 'org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus', 'GetConnectionUnixUser', 's', [sender]);
  return Number(uid);
}

async function polkitAllows(bus: dbus.MessageBus, sender: string, interactive: boolean): Promise<boolean> {
  try {
    const subject = ['system-bus-name', { name: new dbus.Variant('s', sender) }];
    const [result] = await call(bus, 'org.freedesktop.PolicyKit1', '/org/freedesktop/PolicyKit1/Authority', 'org.freedesktop.PolicyKit1.Authority', 'CheckAuthorization', '(sa{sv})sa{ss}us', [subject, POLKIT_ACTION, {}, interactive ? 1 : 0, '']);
    return (result as unknown[])[0] === true;
  } catch {
    return false; // polkit is not there: only root
  }
}

/** May this caller see what a change can see (values, probe output, journal lines)? Root, or polkit without asking. */
export async function isPrivileged(bus: dbus.MessageBus, sender: string): Promise<boolean> {
  return (await callerUid(bus, sender)) === 0 || (await polkitAllows(bus, sender, false));
}

export async function authorize(bus: dbus.MessageBus, sender: string, method: string): Promise<void> {
  const uid = await callerUid(bus, sender);
  if (uid === 0 || (await polkitAllows(bus, sender, true))) return;
  throw new AtomhostError('AH_ERR_NOT_AUTHORIZED', `not authorized: ${method} changes the host and needs root or the polkit action ${POLKIT_ACTION} (caller uid ${uid})`, { details: { uid, method } });
}
