import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../../src/config/load.ts';

// The OpenTelemetry SDK's standard variables reach the `tracing` section through the one validated
// configuration load: good values overlay the file, bad ones fail start-up with the others (exit 78).

const load = (env: Record<string, string>) => loadConfig({ env });
const problemsOf = (env: Record<string, string>): string[] => {
  try {
    load(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map((p) => p.path);
    throw err;
  }
  return [];
};

describe('OTEL_* environment variables', () => {
  it('are off by default, and read into tracing when set', () => {
    expect(load({}).tracing).toMatchObject({ enabled: false, endpoint: 'http://localhost:4318/v1/traces', sampler: { ratio: 1, parentBased: true } });
    const t = load({
      TRACING_ENABLED: 'true',
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/',
      OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Bearer%20abc,x-tenant=a%3Db',
      OTEL_SERVICE_NAME: 'edge-keygate',
      OTEL_TRACES_SAMPLER: 'traceidratio',
      OTEL_TRACES_SAMPLER_ARG: '0.25',
    }).tracing;
    expect(t).toMatchObject({ enabled: true, endpoint: 'http://collector:4318/v1/traces', headers: { authorization: 'Bearer abc', 'x-tenant': 'a=b' }, serviceName: 'edge-keygate', sampler: { ratio: 0.25, parentBased: false } });
  });

  it('use the signal endpoint as it is, and let OTEL_SDK_DISABLED win', () => {
    const t = load({ TRACING_ENABLED: 'true', OTEL_SDK_DISABLED: 'true', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://b/otlp/traces' }).tracing;
    expect(t).toMatchObject({ enabled: false, endpoint: 'https://b/otlp/traces' });
    expect(load({ OTEL_TRACES_SAMPLER: 'parentbased_always_off' }).tracing.sampler).toEqual({ ratio: 0, parentBased: true });
  });

  it('refuse what they cannot honour, every problem at once', () => {
    expect(problemsOf({
      TRACING_ENABLED: 'yes',
      OTEL_TRACES_SAMPLER: 'jaeger_remote',
      OTEL_EXPORTER_OTLP_HEADERS: 'novalue',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
    })).toEqual(expect.arrayContaining([
      'tracing.enabled (from TRACING_ENABLED)',
      'tracing.sampler (from OTEL_TRACES_SAMPLER)',
      'tracing.headers (from OTEL_EXPORTER_OTLP_HEADERS)',
      'tracing (from OTEL_EXPORTER_OTLP_PROTOCOL)',
    ]));
    expect(problemsOf({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '1.5' })).toEqual(['tracing.sampler.ratio (from OTEL_TRACES_SAMPLER_ARG)']);
    expect(problemsOf({ OTEL_TRACES_SAMPLER_ARG: 'half' })).toEqual(['tracing.sampler.ratio (from OTEL_TRACES_SAMPLER_ARG)']);
    expect(problemsOf({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'ftp://x' })).toEqual(['tracing.endpoint (from OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)']);
  });
});
