package graph

import (
	"net/http"

	"usergraph/models"
)

// The GraphQL edge's own codes, beside the domain's, whose names are their GraphQL codes as they
// are (see presentError) and gqlgen's standard ones (GRAPHQL_PARSE_FAILED and the like).
const (
	// codeComplexity is gqlgen's code for a document over the complexity limit; a document that
	// the checks before validation refuse is over the same kind of limit.
	codeComplexity = "COMPLEXITY_LIMIT_EXCEEDED"
	// codePayloadTooLarge: the body is over the limit, and was not read past it.
	codePayloadTooLarge = "PAYLOAD_TOO_LARGE"
	// codeMethodNotAllowed: a method the endpoint does not take, or a mutation sent with GET,
	// which must not change anything.
	codeMethodNotAllowed = "METHOD_NOT_ALLOWED"
	// codeNotAcceptable: the Accept header allows neither media type a response can be sent in.
	codeNotAcceptable = "NOT_ACCEPTABLE"
	// codeUnsupportedMediaType: a POST body that is not sent as application/json in UTF-8.
	codeUnsupportedMediaType = "UNSUPPORTED_MEDIA_TYPE"
	// codePersistedQueryNotFound is gqlgen's code for an automatic persisted query's hash that the
	// server has not seen. Apollo clients retry with the whole document only when it comes with a
	// 200, so it keeps that status whatever the media type.
	codePersistedQueryNotFound = "PERSISTED_QUERY_NOT_FOUND"
)

// requestStatus is the one table from the codes of requests that the transport refuses (it cannot
// read them, or not with this method or media type, or must not run them with this method) to
// their HTTP statuses, whichever media type the answer is in. A GraphQL request that is read but
// fails before execution has the status its media type gives it (see requestErrorStatus); errors
// that come from operations are answered with 200, as GraphQL clients expect.
var requestStatus = map[string]int{
	codePayloadTooLarge:         http.StatusRequestEntityTooLarge,
	codeMethodNotAllowed:        http.StatusMethodNotAllowed,
	codeNotAcceptable:           http.StatusNotAcceptable,
	codeUnsupportedMediaType:    http.StatusUnsupportedMediaType,
	string(models.BadUserInput): http.StatusBadRequest,
	// A request with an Idempotency-Key that cannot run: as the REST route answers them.
	string(models.IdempotencyKeyMismatch): http.StatusUnprocessableEntity,
	string(models.IdempotencyKeyInUse):    http.StatusConflict,
	string(models.Unavailable):            http.StatusServiceUnavailable,
	string(models.Internal):               http.StatusInternalServerError,
}

// retryAfter is the Retry-After of a 503, in seconds.
const retryAfter = "5"
