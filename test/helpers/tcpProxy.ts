import { connect, createServer, type Socket } from 'node:net';

/** A TCP forwarder on 127.0.0.1 whose connections a test can cut, to simulate a network failure. */
export interface TcpProxy {
  readonly port: number;
  /** Destroys every open connection on both sides (new connections are still accepted). */
  cutAll(): void;
  /** Number of connections currently forwarded. */
  readonly connections: number;
  close(): Promise<void>;
}

/** Listens on a free port and forwards every connection to `127.0.0.1:targetPort`. */
export async function createTcpProxy(targetPort: number): Promise<TcpProxy> {
  const pairs = new Set<[Socket, Socket]>();
  const server = createServer((inbound) => {
    const outbound = connect(targetPort, '127.0.0.1');
    const pair: [Socket, Socket] = [inbound, outbound];
    pairs.add(pair);
    const drop = () => {
      pairs.delete(pair);
      inbound.destroy();
      outbound.destroy();
    };
    inbound.on('error', drop).on('close', drop);
    outbound.on('error', drop).on('close', drop);
    inbound.pipe(outbound);
    outbound.pipe(inbound);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const cutAll = () => {
    for (const [a, b] of [...pairs]) {
      a.destroy();
      b.destroy();
    }
    pairs.clear();
  };
  return {
    port,
    get connections() {
      return pairs.size;
    },
    cutAll,
    close() {
      cutAll();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
