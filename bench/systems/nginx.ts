// Baseline: nginx with proxy_pass, keep-alive to the upstream and a static `map` of keys — the physical limit of
// an authenticating proxy on one core (one worker process). Used when `nginx` is installed.
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const nginxInstalled = spawnSync('nginx', ['-v']).error === undefined;

/**
 * What both configurations start with: one worker in the foreground, its files and temp folders under `dir`
 * (created here), no access log; the `http` block is left open for the caller's part.
 */
function preamble(dir: string, connections: number): string {
  for (const d of ['logs', 'tmp']) mkdirSync(join(dir, d), { recursive: true });
  return `
worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/logs/error.log warn;
events { worker_connections ${connections}; }
http {
  access_log off;
  client_body_temp_path ${dir}/tmp/body;
  proxy_temp_path ${dir}/tmp/proxy;
  fastcgi_temp_path ${dir}/tmp/fastcgi;
  uwsgi_temp_path ${dir}/tmp/uwsgi;
  scgi_temp_path ${dir}/tmp/scgi;`;
}

function write(dir: string, conf: string): string {
  const file = join(dir, 'nginx.conf');
  writeFileSync(file, conf);
  return file;
}

/** Writes nginx.conf (and its temp folders) under `dir`; keys map to a tenant id, anything else gets 401. */
export function nginxConfig(dir: string, port: number, upstreamPort: number, keys: string[]): string {
  const conf = `${preamble(dir, 4096)}
  map_hash_bucket_size 128;
  map_hash_max_size 262144;
  map $http_x_api_key $tenant {
    default "";
${keys.map((k) => `    "${k}" "ten_bench";`).join('\n')}
  }
  upstream up {
    server 127.0.0.1:${upstreamPort};
    keepalive 256;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      if ($tenant = "") { return 401; }
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Api-Key "";
      proxy_set_header X-Tenant-Id $tenant;
    }
  }
}
`;
  return write(dir, conf);
}

/** nginx's WebSocket proxy (one worker): `proxy_pass` with the Upgrade handshake, no authentication. */
export function nginxWebSocketConfig(dir: string, port: number, upstreamPort: number): string {
  const conf = `${preamble(dir, 16384)}
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://127.0.0.1:${upstreamPort};
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_read_timeout 3600s;
      proxy_send_timeout 3600s;
    }
  }
}
`;
  return write(dir, conf);
}
