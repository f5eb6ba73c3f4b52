// Types for the parts of dbus-next's lib/ that cli/bus-client.ts imports directly (the
// package types only its index, which also loads the XML introspection code).
declare module 'dbus-next/lib/connection.js' {
  import type { EventEmitter } from 'node:events';
  import type { Message } from 'dbus-next';
  interface Connection extends EventEmitter {
    message(msg: Message): void;
    stream: { end(): void };
  }
  function createConnection(opts: { busAddress: string }): Connection;
  export = createConnection;
}
declare module 'dbus-next/lib/message-type.js' {
  export { Message } from 'dbus-next';
}
declare module 'dbus-next/lib/errors.js' {
  export { DBusError } from 'dbus-next';
}
declare module 'dbus-next/lib/constants.js' {
  export { MessageType } from 'dbus-next';
}
