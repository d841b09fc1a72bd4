/**
 * One etcd v3 client (the `etcd3` package over @grpc/grpc-js) configured
 * for a link that must never hang: every unary call has a deadline, the
 * client itself does not retry (the fleet link owns retries and backoff),
 * and gRPC reconnects quickly once etcd is back.
 */
import { readFileSync } from 'node:fs';
import { Etcd3, type IOptions } from 'etcd3';
import { noop } from 'cockatiel';
import type { EtcdOptions } from './options.js';

export function createEtcdClient(options: EtcdOptions, env: NodeJS.ProcessEnv = process.env): Etcd3 {
  const config: IOptions = {
    hosts: options.endpoints,
    dialTimeout: options.callTimeoutMs,
    // Streams (lease keepalive, watches) live long; only unary calls get a deadline.
    defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + options.callTimeoutMs }),
    faultHandling: { global: noop },
    grpcOptions: {
      // gRPC's default reconnect backoff grows to 120 s; etcd back after an
      // outage should be seen within seconds.
      'grpc.initial_reconnect_backoff_ms': 250,
      'grpc.max_reconnect_backoff_ms': 2000,
    },
  };
  if (options.tls) {
    config.credentials = {
      rootCertificate: readFileSync(options.tls.ca),
      privateKey: options.tls.key ? readFileSync(options.tls.key) : undefined,
      certChain: options.tls.cert ? readFileSync(options.tls.cert) : undefined,
    };
  }
  if (options.auth) {
    const password = env[options.auth.passwordEnv];
    if (password === undefined) throw new Error(`etcd auth: environment variable ${options.auth.passwordEnv} (the password of etcd user "${options.auth.username}") is not set`);
    config.auth = { username: options.auth.username, password };
  }
  return new Etcd3(config);
}
