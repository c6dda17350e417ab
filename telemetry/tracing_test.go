package telemetry

import (
	"maps"
	"slices"
	"strings"
	"testing"
)

// The standard OTEL_* variables decide whether there is tracing and where it goes, as the
// OpenTelemetry specification defines them; a value the service cannot honour is an error that
// names its variable.
func TestTracingConfig(t *testing.T) {
	type want struct {
		enabled     bool
		exporters   []string
		endpoint    string
		headers     map[string]string
		serviceName string
		sampler     string
		errs        []string // each must be in the error; none when empty
	}
	cases := []struct {
		name string
		env  map[string]string
		want want
	}{
		{"NoVariablesIsOff", nil, want{}},
		{"ServiceNameAloneIsOff", map[string]string{"OTEL_SERVICE_NAME": "api"}, want{}},
		{"SDKDisabledIsOff", map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, want{}},
		{"ExporterNoneIsOff", map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, want{}},
		{
			"EndpointTurnsOTLPOverHTTPOn",
			map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"},
			want{enabled: true, exporters: []string{"otlp"}, endpoint: "http://collector:4318/v1/traces", serviceName: "usergraph", sampler: "ParentBased{root:AlwaysOnSampler,remoteParentSampled:AlwaysOnSampler,remoteParentNotSampled:AlwaysOffSampler,localParentSampled:AlwaysOnSampler,localParentNotSampled:AlwaysOffSampler}"},
		},
		{
			"BaseEndpointWithAPathGetsTheTracesPath",
			map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://collector.example.com/otlp/"},
			want{enabled: true, exporters: []string{"otlp"}, endpoint: "https://collector.example.com/otlp/v1/traces", serviceName: "usergraph"},
		},
		{
			"TracesEndpointIsUsedAsItIs",
			map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://ignored:4318", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:9999/custom"},
			want{enabled: true, exporters: []string{"otlp"}, endpoint: "http://collector:9999/custom", serviceName: "usergraph"},
		},
		{
			"GRPCEndpointHasNoPath",
			map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"},
			want{enabled: true, exporters: []string{"otlp"}, endpoint: "http://collector:4317", serviceName: "usergraph"},
		},
		{
			"ExporterAloneSendsToTheLocalCollector",
			map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"},
			want{enabled: true, exporters: []string{"otlp"}, endpoint: "http://localhost:4317", serviceName: "usergraph"},
		},
		{
			"ConsoleAndOTLPTogether",
			map[string]string{"OTEL_TRACES_EXPORTER": "console, otlp"},
			want{enabled: true, exporters: []string{"console", "otlp"}, endpoint: "http://localhost:4318/v1/traces", serviceName: "usergraph"},
		},
		{
			"HeadersAreURLDecoded",
			map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_HEADERS": "Authorization=Bearer%20abc, X-Tenant=t1"},
			want{enabled: true, exporters: []string{"otlp"}, endpoint: "http://c:4318/v1/traces", headers: map[string]string{"Authorization": "Bearer abc", "X-Tenant": "t1"}, serviceName: "usergraph"},
		},
		{
			"ServiceNameWinsOverResourceAttributes",
			map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_RESOURCE_ATTRIBUTES": "service.name=from-attributes,deployment.environment.name=prod", "OTEL_SERVICE_NAME": "from-name"},
			want{enabled: true, exporters: []string{"otlp"}, endpoint: "http://c:4318/v1/traces", serviceName: "from-name"},
		},
		{
			"ResourceAttributesNameTheService",
			map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_RESOURCE_ATTRIBUTES": "service.name=from-attributes"},
			want{enabled: true, exporters: []string{"otlp"}, endpoint: "http://c:4318/v1/traces", serviceName: "from-attributes"},
		},
		{
			"SamplerAndItsRatio",
			map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"},
			want{enabled: true, exporters: []string{"otlp"}, endpoint: "http://c:4318/v1/traces", serviceName: "usergraph", sampler: "TraceIDRatioBased{0.25}"},
		},
		{
			"EveryBadVariableIsNamed",
			map[string]string{
				"OTEL_TRACES_EXPORTER":           "otlp,zipkin",
				"OTEL_EXPORTER_OTLP_PROTOCOL":    "thrift",
				"OTEL_EXPORTER_OTLP_ENDPOINT":    "collector:4318",
				"OTEL_EXPORTER_OTLP_TIMEOUT":     "10s",
				"OTEL_EXPORTER_OTLP_COMPRESSION": "zstd",
				"OTEL_TRACES_SAMPLER":            "sometimes",
				"OTEL_TRACES_SAMPLER_ARG":        "2",
				"OTEL_PROPAGATORS":               "tracecontext,b3",
				"OTEL_BSP_SCHEDULE_DELAY":        "soon",
				"OTEL_SDK_DISABLED":              "maybe",
			},
			want{errs: []string{
				"OTEL_TRACES_EXPORTER: ", "OTEL_EXPORTER_OTLP_PROTOCOL: ", "OTEL_EXPORTER_OTLP_ENDPOINT: ",
				"OTEL_EXPORTER_OTLP_TIMEOUT: ", "OTEL_EXPORTER_OTLP_COMPRESSION: ", "OTEL_TRACES_SAMPLER: ",
				"OTEL_TRACES_SAMPLER_ARG: ", "OTEL_PROPAGATORS: ", "OTEL_BSP_SCHEDULE_DELAY: ", "OTEL_SDK_DISABLED: ",
			}},
		},
		{"BadSwitchIsNamedWithNothingElseSet", map[string]string{"OTEL_SDK_DISABLED": "yes please"}, want{errs: []string{"OTEL_SDK_DISABLED: "}}},
		{
			"HeadersAreNotRepeatedInErrors",
			map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "Authorization=Bearer%zzsecret"},
			want{errs: []string{"OTEL_EXPORTER_OTLP_TRACES_HEADERS: "}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readTracingConfig(func(k string) string { return tc.env[k] })
			if len(tc.want.errs) > 0 {
				if err == nil {
					t.Fatalf("got no error, want one naming %v", tc.want.errs)
				}
				for _, w := range tc.want.errs {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not name %s", err, w)
					}
				}
				if strings.Contains(err.Error(), "secret") {
					t.Errorf("error %q repeats a header's value", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if got.enabled != tc.want.enabled {
				t.Fatalf("enabled: got %v, want %v", got.enabled, tc.want.enabled)
			}
			if !got.enabled {
				return
			}
			if !slices.Equal(got.exporters, tc.want.exporters) {
				t.Errorf("exporters: got %v, want %v", got.exporters, tc.want.exporters)
			}
			if got.endpoint != tc.want.endpoint {
				t.Errorf("endpoint: got %q, want %q", got.endpoint, tc.want.endpoint)
			}
			if !maps.Equal(got.headers, tc.want.headers) {
				t.Errorf("headers: got %v, want %v", got.headers, tc.want.headers)
			}
			if got.serviceName != tc.want.serviceName {
				t.Errorf("service name: got %q, want %q", got.serviceName, tc.want.serviceName)
			}
			if tc.want.sampler != "" && got.sampler.Description() != tc.want.sampler {
				t.Errorf("sampler: got %s, want %s", got.sampler.Description(), tc.want.sampler)
			}
		})
	}
}
