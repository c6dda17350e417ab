package graph

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"usergraph/internal/jsonbody"
	"usergraph/models"
)

// jsonPOST is the POST transport: one GraphQL request as a JSON object. It differs from gqlgen's
// transport.POST where a request cannot be read: its body is bounded (413 past the limit, before
// the whole of it is read), bytes that are not UTF-8 are refused rather than turned into U+FFFD,
// an object that names a key twice is refused rather than read by its last value, and an
// undecodable body gets a short error with a code, where gqlgen's echoes the whole body back and
// gives no code.
type jsonPOST struct {
	maxBytes int64
	maxBatch int
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
	w.Header().Set("Content-Type", "application/json")
	start := graphql.Now()
	body, err := jsonbody.Read(w, r, t.maxBytes)
	switch err {
	case nil:
	case jsonbody.ErrTooLarge:
		writeRequestError(w, codePayloadTooLarge,
			fmt.Sprintf("the request body is larger than %d bytes", t.maxBytes))
		return
	case jsonbody.ErrNotUTF8:
		writeRequestError(w, string(models.BadUserInput), err.Error())
		return
	default:
		return // the client went away mid-body: nobody is left to answer
	}
	if t.maxBatch > 0 && jsonbody.IsArray(body) {
		t.doBatch(w, r, exec, body, start)
		return
	}
	var params graphql.RawParams
	if err := jsonbody.Unmarshal(body, &params); err != nil {
		msg := `the request body must be one JSON object: {"query": "...", "variables": {...}}`
		switch {
		case jsonbody.IsArray(body):
			msg = "batches (JSON arrays of requests) are not accepted: send one request per POST"
		case errors.Is(err, jsonbody.ErrDuplicateKey):
			msg = err.Error()
		}
		writeRequestError(w, string(models.BadUserInput), msg)
		return
	}
	resp, status := t.execute(r, exec, &params, start)
	if status != http.StatusOK {
		w.WriteHeader(status)
	}
	writeResponse(w, resp)
}

// doBatch runs each request of a JSON array in turn and answers with the array of their
// responses, in order.
func (t jsonPOST) doBatch(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor, body []byte, start time.Time) {
	var batch []graphql.RawParams
	if err := jsonbody.Unmarshal(body, &batch); err != nil || len(batch) == 0 {
		msg := "a batch must be a non-empty JSON array of request objects"
		if errors.Is(err, jsonbody.ErrDuplicateKey) {
			msg = err.Error()
		}
		writeRequestError(w, string(models.BadUserInput), msg)
		return
	}
	if len(batch) > t.maxBatch {
		writeRequestError(w, string(models.BadUserInput), fmt.Sprintf("a batch holds at most %d requests, not %d", t.maxBatch, len(batch)))
		return
	}
	responses := make([]*graphql.Response, len(batch))
	for i := range batch {
		responses[i], _ = t.execute(r, exec, &batch[i], start)
	}
	b, err := json.Marshal(responses)
	if err != nil {
		panic(fmt.Errorf("encoding a GraphQL batch response: %w", err))
	}
	w.Write(b)
}

// execute runs one request and returns its response and HTTP status.
func (t jsonPOST) execute(r *http.Request, exec graphql.GraphExecutor, params *graphql.RawParams, start time.Time) (*graphql.Response, int) {
	ctx := r.Context()
	params.Headers = r.Header
	params.ReadTime = graphql.TraceTiming{Start: start, End: graphql.Now()}
	opCtx, errs := exec.CreateOperationContext(ctx, params)
	if errs != nil {
		status := http.StatusOK
		// As gqlgen's own transports: a document that does not parse or validate is 422.
		if errcode.GetErrorKind(errs) == errcode.KindProtocol {
			status = http.StatusUnprocessableEntity
		}
		return exec.DispatchError(graphql.WithOperationContext(ctx, opCtx), errs), status
	}
	responses, ctx := exec.DispatchOperation(ctx, opCtx)
	return responses(ctx), http.StatusOK
}

// writeRequestError answers a request that never reached an operation, with the status that
// requestStatus gives code.
func writeRequestError(w http.ResponseWriter, code, message string) {
	w.WriteHeader(requestStatus[code])
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
