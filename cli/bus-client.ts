// A client-only connection to the system bus: dbus-next's wire code (connection, message)
// without its MessageBus, whose module also loads the service side and the XML
// introspection (xml2js, xmlbuilder, sax: ~220 KB that `atomhost status` compiled for
// nothing). The CLI knows atomhostd's interface, so it needs only call(), the messages
// (signals) and close. Behaves as dbus-next's MessageBus for these: a method call is
// answered by its reply or rejected with a DBusError, and connection errors come as 'error'.
import { EventEmitter } from 'node:events';
import createConnection from 'dbus-next/lib/connection.js';
import { Message } from 'dbus-next/lib/message-type.js';
import { DBusError } from 'dbus-next/lib/errors.js';
import { MessageType } from 'dbus-next/lib/constants.js';

export { Message, MessageType };

export class BusClient extends EventEmitter {
  readonly #conn: ReturnType<typeof createConnection>;
  #serial = 1;
  readonly #replies = new Map<number, (reply: Message) => void>();

  constructor(busAddress: string) {
    super();
    this.#conn = createConnection({ busAddress });
    this.#conn.on('error', (err: Error) => this.emit('error', err));
    this.#conn.on('message', (msg: Message) => {
      this.emit('message', msg);
      if (msg.type === MessageType.METHOD_RETURN || msg.type === MessageType.ERROR) {
        const serial = Number(msg.replySerial);
        const handler = this.#replies.get(serial);
        this.#replies.delete(serial);
        handler?.(msg);
      } else if (msg.type === MessageType.METHOD_CALL) {
        // Nothing is exported here: say so, as dbus-next does, rather than leave the caller waiting.
        this.#send(Message.newError(msg as never, 'org.freedesktop.DBus.Error.UnknownMethod', `Method '${msg.member}' on interface '${msg.interface || '(none)'}' does not exist`));
      }
    });
    // The bus drops a connection that does not say Hello first.
    this.call(new Message({ destination: 'org.freedesktop.DBus', path: '/org/freedesktop/DBus', interface: 'org.freedesktop.DBus', member: 'Hello' })).catch((err: unknown) => this.emit('error', err));
  }

  #send(msg: Message): void {
    msg.serial = this.#serial++;
    this.#conn.message(msg);
  }

  /** Sends a method call and resolves to its reply; an error reply rejects with a DBusError. */
  call(msg: Message): Promise<Message> {
    return new Promise((resolve, reject) => {
      msg.serial = this.#serial++;
      this.#replies.set(msg.serial, (reply) => (reply.type === MessageType.ERROR ? reject(new DBusError(reply.errorName, reply.body[0] as string, reply)) : resolve(reply)));
      this.#conn.message(msg);
    });
  }

  disconnect(): void {
    this.#conn.stream.end();
  }
}

/** The system bus, at DBUS_SYSTEM_BUS_ADDRESS or the standard socket (as dbus-next's systemBus()). */
export function systemBus(): BusClient {
  return new BusClient(process.env.DBUS_SYSTEM_BUS_ADDRESS || 'unix:path=/var/run/dbus/system_bus_socket');
}
