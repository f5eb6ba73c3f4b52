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

export async function authorize(bus: dbus.MessageBus, sender: string, method: string): Promise<void> {
  const [uid] = await call(bus, 'org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus', 'GetConnectionUnixUser', 's', [sender]);
  if (Number(uid) === 0) return;
  try {
    const subject = ['system-bus-name', { name: new dbus.Variant('s', sender) }];
    const [result] = await call(bus, 'org.freedesktop.PolicyKit1', '/org/freedesktop/PolicyKit1/Authority', 'org.freedesktop.PolicyKit1.Authority', 'CheckAuthorization', '(sa{sv})sa{ss}us', [subject, POLKIT_ACTION, {}, 1, '']);
    if ((result as unknown[])[0] === true) return;
  } catch {
    // polkit is not there: fall through to the refusal
  }
  throw new AtomhostError('AH_ERR_NOT_AUTHORIZED', `not authorized: ${method} changes the host and needs root or the polkit action ${POLKIT_ACTION} (caller uid ${uid})`, { details: { uid, method } });
}
