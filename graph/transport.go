package graph

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"usergraph/internal/jsonbody"
	"usergraph/models"
)

// CodePayloadTooLarge is the code of a request whose body is over the size limit.
const CodePayloadTooLarge = "PAYLOAD_TOO_LARGE"

// jsonPOST is the POST transport: one GraphQL request as a JSON object. It differs from gqlgen's
// transport.POST where a request cannot be read: its body is bounded (413 past the limit, before
// the whole of it is read), bytes that are not UTF-8 are refused rather than turned into U+FFFD,
// and an undecodable body gets a short error with a code, where gqlgen's echoes the whole body
// back and gives no code.
type jsonPOST struct {
	maxBytes int64
}

var _ graphql.Transport = jsonPOST{}

// Supports takes POST requests whose Content-Type is application/json. Form and multipart bodies,
// which a browser may send cross-site without a preflight, are not taken.
func (jsonPOST) Supports(r *http.Request) bool {
	if r.Method != http.MethodPost || r.Header.Get("Upgrade") != "" {
		return false
	}
	mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mediaType == "application/json"
}

// Do runs the request.
func (t jsonPOST) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	ctx := r.Context()
	w.Header().Set("Content-Type", "application/json")
	start := graphql.Now()
	var params graphql.RawParams
	switch err := jsonbody.Decode(w, r, t.maxBytes, &params); err {
	case nil:
	case jsonbody.ErrTooLarge:
		writeRequestError(w, http.StatusRequestEntityTooLarge, CodePayloadTooLarge,
			fmt.Sprintf("the request body is larger than %d bytes", t.maxBytes))
		return
	case jsonbody.ErrNotUTF8:
		writeRequestError(w, http.StatusBadRequest, string(models.BadUserInput), err.Error())
		return
	case jsonbody.ErrAborted:
		return // nobody is left to answer
	default:
		writeRequestError(w, http.StatusBadRequest, string(models.BadUserInput),
			`the request body must be one JSON object: {"query": "...", "variables": {...}}`)
		return
	}
	params.Headers = r.Header
	params.ReadTime = graphql.TraceTiming{Start: start, End: graphql.Now()}

	opCtx, errs := exec.CreateOperationContext(ctx, &params)
	if errs != nil {
		// As gqlgen's own transports: a document that does not parse or validate is 422.
		if errcode.GetErrorKind(errs) == errcode.KindProtocol {
			w.WriteHeader(http.StatusUnprocessableEntity)
		}
		writeResponse(w, exec.DispatchError(graphql.WithOperationContext(ctx, opCtx), errs))
		return
	}
	responses, ctx := exec.DispatchOperation(ctx, opCtx)
	writeResponse(w, responses(ctx))
}

func writeRequestError(w http.ResponseWriter, status int, code, message string) {
	w.WriteHeader(status)
	writeResponse(w, &graphql.Response{Errors: gqlerror.List{{
		Message:    message,
		Extensions: map[string]any{"code": code},
	}}})
}

func writeResponse(w io.Writer, resp *graphql.Response) {
	b, err := json.Marshal(resp)
	if err != nil {
		// Only a resolver returning a value JSON cannot hold gets here; the headers are gone.
		panic(fmt.Errorf("encoding a GraphQL response: %w", err))
	}
	w.Write(b)
}
