package graph

import (
	"context"
	"sync/atomic"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"usergraph/models"
)

// tracerScope names the spans this package makes.
const tracerScope = "usergraph/graph"

// operationTracer gives each GraphQL operation of a traced request a span, as OpenTelemetry's
// GraphQL conventions describe it: named by the operation's type ("mutation"), with
// graphql.operation.type and graphql.operation.name, inside the request's server span and around
// the database statements the operation makes.
//
// The document is never recorded: its literals may hold what the caller wrote into it, a new
// email say. Nor is an error's message, which may quote the input: errors are recorded by their
// extensions.code alone, in error.type and in one graphql.error event each. The span is marked as
// failed only for the codes that are the service's fault (INTERNAL_SERVER_ERROR and
// SERVICE_UNAVAILABLE), as a server span is for a 5xx and not for a 4xx.
//
// A request that is not traced gets no span, at the cost of one look into its context.
type operationTracer struct {
	tracers *tracerCache
}

var (
	_ graphql.HandlerExtension     = operationTracer{}
	_ graphql.OperationInterceptor = operationTracer{}
)

func newOperationTracer() operationTracer {
	return operationTracer{tracers: &tracerCache{}}
}

func (operationTracer) ExtensionName() string                          { return "OperationTracer" }
func (operationTracer) Validate(schema graphql.ExecutableSchema) error { return nil }

func (o operationTracer) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	parent := trace.SpanFromContext(ctx)
	if !parent.SpanContext().IsValid() || !graphql.HasOperationContext(ctx) {
		return next(ctx)
	}
	op := graphql.GetOperationContext(ctx).Operation
	if op == nil {
		return next(ctx)
	}
	opType := string(op.Operation)
	attrs := []attribute.KeyValue{semconv.GraphQLOperationTypeKey.String(opType)}
	if op.Name != "" {
		attrs = append(attrs, semconv.GraphQLOperationName(op.Name))
	}
	// The conventions' span kind is SERVER; but the request's server span is the HTTP one, and
	// tools that count a service's requests by its server spans would count each operation twice.
	ctx, span := o.tracers.tracer(parent.TracerProvider()).Start(ctx, opType,
		trace.WithSpanKind(trace.SpanKindInternal), trace.WithAttributes(attrs...))
	// The transport runs the operation with the context handed on here, so that the statements
	// the resolvers make are children of this span.
	responses := next(ctx)
	return func(ctx context.Context) *graphql.Response {
		resp := responses(ctx)
		if resp != nil {
			recordErrors(span, resp.Errors)
		}
		// A query or a mutation has one response; a subscription's end is a nil one.
		if resp == nil || op.Operation != ast.Subscription {
			span.End()
		}
		return resp
	}
}

// recordErrors records a response's errors on its operation's span, by their codes.
func recordErrors(span trace.Span, errs gqlerror.List) {
	if len(errs) == 0 {
		return
	}
	var first, failure string
	for _, e := range errs {
		code, _ := e.Extensions["code"].(string)
		if code == "" {
			code = "ERROR"
		}
		if first == "" {
			first = code
		}
		if failure == "" && (code == string(models.Internal) || code == string(models.Unavailable)) {
			failure = code
		}
		span.AddEvent("graphql.error", trace.WithAttributes(semconv.ErrorTypeKey.String(code)))
	}
	span.SetAttributes(semconv.ErrorTypeKey.String(first))
	if failure != "" {
		span.SetStatus(codes.Error, failure)
	}
}

// tracerCache keeps the tracer of the provider last seen: asking a provider for its tracer takes a
// lock, and every traced request of a service has the same provider.
type tracerCache struct {
	last atomic.Pointer[providerTracer]
}

type providerTracer struct {
	provider trace.TracerProvider
	tracer   trace.Tracer
}

func (c *tracerCache) tracer(p trace.TracerProvider) trace.Tracer {
	if t := c.last.Load(); t != nil && t.provider == p {
		return t.tracer
	}
	t := &providerTracer{provider: p, tracer: p.Tracer(tracerScope, trace.WithSchemaURL(semconv.SchemaURL))}
	c.last.Store(t)
	return t.tracer
}
