// The OpenTelemetry SDK's standard environment variables, read into the `tracing` section so that the
// configuration file and the environment meet in one validated place (the environment wins, as it does for
// keygate's own variables). Parsed here rather than by the SDK: the SDK is loaded only when tracing is on, and a
// bad value must fail start-up with the others (exit 78), not be ignored with a warning at export time.
// Names and formats: https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/

type Env = Record<string, string | undefined>;

export interface EnvProblem {
  path: string;
  message: string;
}

/** Sets `path` to `value`, noting that it came from the environment variable `name`. */
export type SetFromEnv = (path: string, value: unknown, name: string) => void;

const SAMPLERS: Record<string, { parentBased: boolean; ratio: number | 'arg' }> = {
  always_on: { parentBased: false, ratio: 1 },
  always_off: { parentBased: false, ratio: 0 },
  traceidratio: { parentBased: false, ratio: 'arg' },
  parentbased_always_on: { parentBased: true, ratio: 1 },
  parentbased_always_off: { parentBased: true, ratio: 0 },
  parentbased_traceidratio: { parentBased: true, ratio: 'arg' },
};

/** `k1=v1,k2=v2` with URL-encoded values (the W3C Baggage form the OTLP exporter variables use). */
function headerList(raw: string): Record<string, string> | null {
  const out: Record<string, string> = {};
  for (const pair of raw.split(',')) {
    if (pair.trim() === '') continue;
    const at = pair.indexOf('=');
    if (at <= 0) return null;
    try {
      out[decodeURIComponent(pair.slice(0, at).trim())] = decodeURIComponent(pair.slice(at + 1).trim());
    } catch {
      return null;
    }
  }
  return out;
}

const value = (env: Env, name: string): string | undefined => {
  const v = env[name]?.trim();
  return v === undefined || v === '' ? undefined : v;
};

export function overlayOtelEnv(env: Env, set: SetFromEnv): EnvProblem[] {
  const problems: EnvProblem[] = [];
  const enabled = value(env, 'TRACING_ENABLED');
  if (enabled !== undefined) {
    if (enabled !== 'true' && enabled !== 'false') problems.push({ path: 'tracing.enabled (from TRACING_ENABLED)', message: 'must be true or false' });
    else set('tracing.enabled', enabled === 'true', 'TRACING_ENABLED');
  }
  // The SDK's own off switch wins over everything.
  if (value(env, 'OTEL_SDK_DISABLED')?.toLowerCase() === 'true') set('tracing.enabled', false, 'OTEL_SDK_DISABLED');

  const traces = value(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
  const base = value(env, 'OTEL_EXPORTER_OTLP_ENDPOINT');
  // The signal's own variable is used as it is; the base one gets the signal's path appended.
  if (traces !== undefined) set('tracing.endpoint', traces, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
  else if (base !== undefined) set('tracing.endpoint', `${base.replace(/\/+$/, '')}/v1/traces`, 'OTEL_EXPORTER_OTLP_ENDPOINT');

  for (const name of ['OTEL_EXPORTER_OTLP_PROTOCOL', 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL']) {
    const protocol = value(env, name);
    if (protocol !== undefined && protocol !== 'http/protobuf') problems.push({ path: `tracing (from ${name})`, message: 'keygate exports OTLP over http/protobuf only' });
  }

  let headers: Record<string, string> | null = null;
  for (const name of ['OTEL_EXPORTER_OTLP_HEADERS', 'OTEL_EXPORTER_OTLP_TRACES_HEADERS']) {
    const raw = value(env, name);
    if (raw === undefined) continue;
    const parsed = headerList(raw);
    if (parsed === null) problems.push({ path: `tracing.headers (from ${name})`, message: 'must be key=value pairs separated by commas (values URL-encoded)' });
    else headers = Object.assign(headers ?? {}, parsed);
  }
  if (headers !== null) set('tracing.headers', headers, 'OTEL_EXPORTER_OTLP_HEADERS');

  // The batch processor's variables (the SDK no longer reads them itself).
  for (const [name, path] of [['OTEL_BSP_SCHEDULE_DELAY', 'tracing.exportDelayMs'], ['OTEL_BSP_MAX_QUEUE_SIZE', 'tracing.maxQueueSize']] as const) {
    const raw = value(env, name);
    if (raw !== undefined) set(path, /^\d+$/.test(raw) ? Number(raw) : raw, name);
  }

  const service = value(env, 'OTEL_SERVICE_NAME');
  if (service !== undefined) set('tracing.serviceName', service, 'OTEL_SERVICE_NAME');

  const samplerName = value(env, 'OTEL_TRACES_SAMPLER');
  const arg = value(env, 'OTEL_TRACES_SAMPLER_ARG');
  if (samplerName !== undefined) {
    const sampler = SAMPLERS[samplerName];
    if (!sampler) {
      problems.push({ path: 'tracing.sampler (from OTEL_TRACES_SAMPLER)', message: `must be one of ${Object.keys(SAMPLERS).join(', ')}` });
    } else {
      set('tracing.sampler.parentBased', sampler.parentBased, 'OTEL_TRACES_SAMPLER');
      // The ratio samplers default to 1 when no argument is given (as the SDK does).
      if (sampler.ratio !== 'arg') set('tracing.sampler.ratio', sampler.ratio, 'OTEL_TRACES_SAMPLER');
      else if (arg === undefined) set('tracing.sampler.ratio', 1, 'OTEL_TRACES_SAMPLER');
    }
  }
  if (arg !== undefined && (samplerName === undefined || SAMPLERS[samplerName]?.ratio === 'arg')) {
    const ratio = Number(arg);
    set('tracing.sampler.ratio', Number.isFinite(ratio) && /^[\d.eE+-]+$/.test(arg) ? ratio : arg, 'OTEL_TRACES_SAMPLER_ARG');
  }
  return problems;
}
