package graph

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"usergraph/graph/model"
	"usergraph/idempotency"
	"usergraph/models"
	"usergraph/telemetry"
)

// Limits bounds what one GraphQL request may ask of the server. The defaults are far above what a
// real client sends, and far below what hurts.
type Limits struct {
	// MaxBodyBytes bounds a POST body.
	MaxBodyBytes int64
	// Tokens bounds how many lexical tokens the parser reads before giving up on a document.
	Tokens int
	// Fields bounds how many nodes a document holds before it is validated: operations, fields,
	// fragment spreads and inline fragments, arguments, directives, variable definitions and
	// literal values, in operations and fragments alike, fragments counted wherever spread.
	Fields int
	// Complexity bounds a document's cost: each field costs 1, users multiplies its selection by
	// MaxPageSize, and each mutation costs MutationCost more.
	Complexity int
	// Batch is how many operations one POST may carry as a JSON array; 0 refuses arrays. Each
	// operation of a batch is held to the other limits on its own.
	Batch int
	// Introspection allows introspection queries, and field suggestions in validation errors.
	Introspection bool
}

// DefaultLimits are the limits a server uses unless configured otherwise.
var DefaultLimits = Limits{
	// A body costs about 35 µs of CPU a KiB to read, decode and parse, with or without a token:
	// this keeps the costliest request under 10 ms, and is far more than any document or
	// variables this API takes need.
	MaxBodyBytes: 256 << 10,
	// The Playground's introspection query is 180 tokens; parsing costs about a microsecond a
	// token, whoever sends the document.
	Tokens:        5000,
	Fields:        1000,
	Complexity:    5000,
	Batch:         0,
	Introspection: true,
}

// maxErrors is how many errors one response carries at most.
const maxErrors = 20

// MutationCost is the cost of one mutation field, so that a document cannot pack hundreds of
// writes into one request: with the default limit, at most a hundred.
const MutationCost = 50

// NewHandler returns the GraphQL endpoint: POST with a JSON body (or, if limits allow, a JSON
// array of them), GET for queries (never mutations), answered in
// application/graphql-response+json or application/json as the Accept header asks, with a
// parsed-query cache, automatic persisted queries and the limits given. A POST that carries one
// mutation and an Idempotency-Key runs through keys (nil ignores the header).
func NewHandler(users *models.UserService, keys *idempotency.Keeper, logger *slog.Logger, limits Limits) http.Handler {
	cfg := Config{Resolvers: &Resolver{UserService: users}}
	// A page of users counts as a full page, whatever first says, so that a document's
	// complexity does not depend on its variables and is worked out once (see complexityLimit).
	cfg.Complexity.Query.Users = func(child int, _ *int, _ *string) int { return 1 + child*models.MaxPageSize }
	cfg.Complexity.Mutation.CreateUser = func(child int, _ model.CreateUserInput) int { return MutationCost + child }
	cfg.Complexity.Mutation.UpdateUser = func(child int, _ string, _ model.UpdateUserInput) int { return MutationCost + child }
	cfg.Complexity.Mutation.DeleteUser = func(child int, _ string) int { return MutationCost + child }

	schema := NewExecutableSchema(cfg)
	srv := handler.New(schema)
	srv.AddTransport(optionsOnly{transport.Options{AllowedMethods: allowedMethods}})
	srv.AddTransport(queryGET{})
	srv.AddTransport(jsonPOST{maxBytes: limits.MaxBodyBytes, maxBatch: limits.Batch, keys: keys, logger: logger})
	// Last: it takes whatever the others do not.
	srv.AddTransport(unsupported{})
	queryCache := newBoundedCache(documentCacheBytes, documentWeight)
	srv.SetQueryCache(queryCache)
	srv.SetParserTokenLimit(limits.Tokens)
	if limits.Introspection {
		srv.Use(extension.Introspection{})
	} else {
		srv.SetDisableSuggestion(true)
	}
	srv.Use(extension.AutomaticPersistedQuery{Cache: newBoundedCache(persistedQueryCacheBytes, stringWeight)})
	// After persisted queries, which may supply the document it checks.
	srv.Use(documentLimit{max: limits.Fields, tokens: limits.Tokens, cache: queryCache})
	srv.Use(newComplexityLimit(limits.Complexity))
	srv.Use(errorCap{max: maxErrors})
	srv.Use(newOperationReporter(schema.Schema()))
	srv.Use(newOperationTracer())
	srv.SetErrorPresenter(presentError(logger))
	srv.SetRecoverFunc(recoverPanic(logger))
	return srv
}

// presentError gives every error in a response an extensions.code. Domain errors carry their own
// code and, for input and conflicts, the fields at fault; errors gqlgen raised about the request
// keep their standard codes; anything else is an internal error, logged here and shown to the
// client only as "internal error".
func presentError(logger *slog.Logger) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		gqlErr := graphql.DefaultErrorPresenter(ctx, err)
		if telemetry.ClientGone(ctx) {
			// Nobody will read the answer, and telemetry counts the request as the client's: no
			// failure of the service's to log.
			logger.DebugContext(ctx, "graphql: the client went away before the answer", "err", err, "path", gqlErr.Path.String())
			gqlErr.Extensions = map[string]any{"code": string(models.ErrorCode(err))}
			return gqlErr
		}
		if e, ok := errors.AsType[*models.Error](err); ok {
			// At the levels the REST edge logs them at: an outage is expected now and then, an
			// internal error never.
			switch e.Code {
			case models.Unavailable:
				logger.WarnContext(ctx, "graphql: database unavailable", "err", err, "path", gqlErr.Path.String())
			case models.Internal:
				logger.ErrorContext(ctx, "graphql: internal error", "err", err, "path", gqlErr.Path.String())
			}
			gqlErr.Message = e.Message
			gqlErr.Extensions = errorExtensions(e)
			return gqlErr
		}
		if _, ok := gqlErr.Extensions["code"]; ok {
			return gqlErr
		}
		if gqlErr.Err == nil {
			// gqlgen's own words about a request it could not take, such as a persisted query
			// whose hash does not match it: the request is at fault.
			gqlErr.Extensions = map[string]any{"code": string(models.BadUserInput)}
			return gqlErr
		}
		logger.ErrorContext(ctx, "graphql: internal error", "err", err, "path", gqlErr.Path.String())
		return &gqlerror.Error{
			Message:    models.ErrorMessage(err),
			Path:       gqlErr.Path,
			Locations:  gqlErr.Locations,
			Extensions: map[string]any{"code": string(models.Internal)},
		}
	}
}

// errorExtensions renders a domain error's code and fields. The code's name is the GraphQL code:
// the table from domain codes to GraphQL is the identity.
func errorExtensions(e *models.Error) map[string]any {
	ext := map[string]any{"code": string(e.Code)}
	if len(e.Fields) > 0 {
		ext["field"] = e.Fields[0].Field
		ext["errors"] = e.Fields
	}
	return ext
}

// recoverPanic turns a panic in a resolver into an internal error, logged with its stack.
func recoverPanic(logger *slog.Logger) graphql.RecoverFunc {
	return func(ctx context.Context, p any) error {
		logger.ErrorContext(ctx, "graphql: panic", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		return &gqlerror.Error{
			Message:    models.ErrorMessage(nil),
			Extensions: map[string]any{"code": string(models.Internal)},
		}
	}
}
