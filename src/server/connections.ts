import type { Server, Socket } from "node:net";

/** One counted connection; a later connection reusing its address and port gets an entry of its own. */
interface Counted {
  peer: string;
}

/**
 * Bounds the connections each peer address holds open before any of its requests authenticated. A connection
 * counts from its TCP handshake until it carries an authenticated request or closes; a new connection from an
 * address already at the limit is closed at once. So callers without credentials cannot hold every socket while
 * they trickle headers or bodies, and authenticated ones (many clients behind one proxy) are not limited by it.
 */
export class UnauthenticatedConnections {
  private readonly perPeer = new Map<string, number>();
  /** By `address|port`, which a TLS socket reports as its underlying TCP socket does. */
  private readonly counted = new Map<string, Counted>();

  constructor(
    private readonly limit: number,
    private readonly onRefused: (peer: string) => void,
  ) {}

  /** Counts every new TCP connection of `server` (before any TLS handshake). */
  attach(server: Server): void {
    server.on("connection", (socket: Socket) => this.open(socket));
  }

  /** The connection of `socket` carried an authenticated request: it no longer counts. */
  authenticated(socket: Socket): void {
    const key = connectionKey(socket);
    const entry = key === null ? undefined : this.counted.get(key);
    if (key !== null && entry !== undefined) this.release(key, entry);
  }

  private open(socket: Socket): void {
    const peer = socket.remoteAddress;
    const key = connectionKey(socket);
    if (peer === undefined || key === null) return void socket.destroy();
    const count = this.perPeer.get(peer) ?? 0;
    if (count >= this.limit) {
      socket.destroy();
      this.onRefused(peer);
      return;
    }
    const entry = { peer };
    this.perPeer.set(peer, count + 1);
    this.counted.set(key, entry);
    socket.once("close", () => this.release(key, entry));
  }

  private release(key: string, entry: Counted): void {
    if (this.counted.get(key) !== entry) return;
    this.counted.delete(key);
    const count = (this.perPeer.get(entry.peer) ?? 1) - 1;
    if (count === 0) this.perPeer.delete(entry.peer);
    else this.perPeer.set(entry.peer, count);
  }
}

function connectionKey(socket: Socket): string | null {
  const { remoteAddress, remotePort } = socket;
  return remoteAddress === undefined || remotePort === undefined ? null : `${remoteAddress}|${remotePort}`;
}

/**
 * Connections that have not yet sent a whole request head. Node closes them when `headersTimeout` passes, but stops
 * watching once the server starts closing, so one that sends nothing would hold a graceful shutdown for ever: the
 * server closes all of them when it starts closing (requests already under way still finish).
 */
export class SilentConnections {
  private readonly waiting = new Set<Socket>();

  /** Watches every new connection of `server`: its TLS socket when `secure`, else the TCP socket. */
  attach(server: Server, secure: boolean): void {
    server.on(secure ? "secureConnection" : "connection", (socket: Socket) => {
      this.waiting.add(socket);
      socket.once("close", () => this.waiting.delete(socket));
    });
    server.on("request", (request: { socket: Socket }) => this.waiting.delete(request.socket));
  }

  closeAll(): void {
    for (const socket of this.waiting) socket.destroy();
  }
}
