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
)

// requestStatus is the one table from the codes of requests that never reach an operation to
// their HTTP statuses. Errors that come from operations are answered with 200, as GraphQL clients
// expect, and documents that do not parse or validate with gqlgen's 422.
var requestStatus = map[string]int{
	codePayloadTooLarge:         http.StatusRequestEntityTooLarge,
	string(models.BadUserInput): http.StatusBadRequest,
}
