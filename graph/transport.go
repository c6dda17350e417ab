package graph

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"usergraph/idempotency"
	"usergraph/internal/jsonbody"
	"usergraph/models"
)

// The media types a response is sent in (GraphQL over HTTP). application/graphql-response+json
// tells the client that the body is a GraphQL response whatever the status, so request errors
// can be 4xx; an application/json client cannot tell a GraphQL server's 4xx from a proxy's, so
// it gets 200 for anything the server read as a GraphQL request.
const (
	mediaJSON            = "application/json"
	mediaGraphQLResponse = "application/graphql-response+json"
)

// allowedMethods are the methods the endpoint takes: OPTIONS lists them, and a 405 names them.
var allowedMethods = []string{http.MethodGet, http.MethodPost, http.MethodOptions}

// negotiate picks the media type of the response from the request's Accept header, and reports
// false when the header accepts neither. The highest weight wins, then the range that names a
// type more specifically. A client that names both types equally gets
// application/graphql-response+json, the spec's preferred one; a client that names neither, with
// no Accept header or only wildcards such as curl's and fetch's */*, is taken for a client
// written before that type, and gets application/json.
func negotiate(h http.Header) (string, bool) {
	var ranges []string
	for _, v := range h.Values("Accept") {
		for part := range strings.SplitSeq(v, ",") {
			if strings.TrimSpace(part) != "" {
				ranges = append(ranges, part)
			}
		}
	}
	if len(ranges) == 0 {
		return mediaJSON, true
	}
	gr, js := acceptanceOf(ranges, mediaGraphQLResponse), acceptanceOf(ranges, mediaJSON)
	switch {
	case gr.q == 0 && js.q == 0:
		return "", false
	case gr.q != js.q:
		return pick(gr.q > js.q), true
	case gr.specificity != js.specificity:
		return pick(gr.specificity > js.specificity), true
	default:
		return pick(gr.specificity == specificExact), true
	}
}

func pick(graphQLResponse bool) string {
	if graphQLResponse {
		return mediaGraphQLResponse
	}
	return mediaJSON
}

// How specifically an Accept range names a media type, as RFC 9110 ranks them: the most specific
// range that matches a type gives its weight.
const (
	specificNone = iota - 1
	specificAny
	specificSubtypes
	specificExact
)

// acceptance is how far an Accept header accepts one media type.
type acceptance struct {
	q           float64
	specificity int
}

// acceptanceOf is the weight that ranges give media: that of the most specific range matching
// it, or 0. A range is skipped if it cannot be parsed, has a weight outside [0, 1], or names a
// charset other than UTF-8, the only one responses are written in.
func acceptanceOf(ranges []string, media string) acceptance {
	best := acceptance{specificity: specificNone}
	for _, r := range ranges {
		mediaRange, params, err := mime.ParseMediaType(r)
		if err != nil {
			continue
		}
		specificity := specificNone
		switch mediaRange {
		case media:
			specificity = specificExact
		case "application/*":
			specificity = specificSubtypes
		case "*/*":
			specificity = specificAny
		}
		if specificity == specificNone || specificity < best.specificity {
			continue
		}
		if charset, ok := params["charset"]; ok && !strings.EqualFold(charset, "utf-8") {
			continue
		}
		q := 1.0
		if s, ok := params["q"]; ok {
			if q, err = strconv.ParseFloat(s, 64); err != nil || q < 0 || q > 1 {
				continue
			}
		}
		if specificity > best.specificity || q > best.q {
			best = acceptance{q: q, specificity: specificity}
		}
	}
	return best
}

// requestParams are the parameters of a GraphQL-over-HTTP request. Query is a pointer, unlike in
// gqlgen's RawParams, because a request without one is malformed (a 400 for either media type),
// while one whose query is "" holds an empty document: a GraphQL request error, whose status
// depends on the media type.
type requestParams struct {
	Query         *string        `json:"query"`
	OperationName string         `json:"operationName"`
	Variables     map[string]any `json:"variables"`
	Extensions    map[string]any `json:"extensions"`
}

// run runs one request and returns its response and the response's status in media. Only a
// query runs unless mutations is set.
func run(r *http.Request, exec graphql.GraphExecutor, media string, p *requestParams, start time.Time, mutations bool) (*graphql.Response, int) {
	ctx, opCtx, resp, status := prepare(r, exec, media, p, start, mutations)
	if resp != nil {
		return resp, status
	}
	return execute(ctx, exec, opCtx, media)
}

// prepare reads, parses and validates one request, for execute to run. When the request cannot
// run, it returns the response that says why instead, and its status in media.
func prepare(r *http.Request, exec graphql.GraphExecutor, media string, p *requestParams, start time.Time, mutations bool) (context.Context, *graphql.OperationContext, *graphql.Response, int) {
	ctx := r.Context()
	// An automatic persisted query names its document by hash alone.
	if p.Query == nil && p.Extensions["persistedQuery"] == nil {
		return ctx, nil, errorResponse(string(models.BadUserInput), `the request has no query: send {"query": "..."}`), requestStatus[string(models.BadUserInput)]
	}
	params := &graphql.RawParams{
		OperationName: p.OperationName,
		Variables:     p.Variables,
		Extensions:    p.Extensions,
		Headers:       r.Header,
		ReadTime:      graphql.TraceTiming{Start: start, End: graphql.Now()},
	}
	if p.Query != nil {
		params.Query = *p.Query
	}
	opCtx, errs := exec.CreateOperationContext(ctx, params)
	if errs != nil {
		resp := exec.DispatchError(graphql.WithOperationContext(ctx, opCtx), errs)
		return ctx, nil, resp, requestErrorStatus(media, resp.Errors)
	}
	if !mutations && opCtx.Operation.Operation != ast.Query {
		err := &gqlerror.Error{
			Message:    fmt.Sprintf("GET runs queries only: send a %s with POST", opCtx.Operation.Operation),
			Extensions: map[string]any{"code": codeMethodNotAllowed},
		}
		return ctx, nil, exec.DispatchError(graphql.WithOperationContext(ctx, opCtx), gqlerror.List{err}), requestStatus[codeMethodNotAllowed]
	}
	return ctx, opCtx, nil, 0
}

// execute runs an operation that prepare made ready, in ctx, and returns its response and the
// response's status in media.
func execute(ctx context.Context, exec graphql.GraphExecutor, opCtx *graphql.OperationContext, media string) (*graphql.Response, int) {
	responses, ctx := exec.DispatchOperation(ctx, opCtx)
	resp := responses(ctx)
	if resp.Data == nil {
		return resp, requestErrorStatus(media, resp.Errors)
	}
	return resp, http.StatusOK
}

// requestErrorStatus is the status of a response without data: a request that was read, but
// failed before any operation ran, because its document does not parse or validate, its
// variables do not coerce, it names no operation, or it is over a limit.
func requestErrorStatus(media string, errs gqlerror.List) int {
	for _, e := range errs {
		if e.Extensions["code"] == codePersistedQueryNotFound {
			return http.StatusOK
		}
	}
	if media == mediaGraphQLResponse {
		return http.StatusBadRequest
	}
	return http.StatusOK
}

// jsonPOST is the POST transport: one GraphQL request as a JSON object. It differs from gqlgen's
// transport.POST where a request cannot be read: its body is bounded (413 past the limit, before
// the whole of it is read), bytes that are not UTF-8 are refused rather than turned into U+FFFD,
// an object that names a key twice is refused rather than read by its last value, and an
// undecodable body gets a short error with a code, where gqlgen's echoes the whole body back and
// gives no code. It also weighs Accept headers' q values, which gqlgen's ignores, and answers
// request errors with the statuses the GraphQL-over-HTTP spec gives each media type.
type jsonPOST struct {
	maxBytes int64
	maxBatch int
	// keys runs mutations that carry an Idempotency-Key once each (see doKeyed); nil ignores the
	// header.
	keys   *idempotency.Keeper
	logger *slog.Logger
}

var _ graphql.Transport = jsonPOST{}

// Supports takes POST requests whose Content-Type is application/json in UTF-8. Form and
// multipart bodies, which a browser may send cross-site without a preflight, are not taken.
func (jsonPOST) Supports(r *http.Request) bool {
	if r.Method != http.MethodPost {
		return false
	}
	mediaType, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mediaType != mediaJSON {
		return false
	}
	charset, ok := params["charset"]
	return !ok || strings.EqualFold(charset, "utf-8")
}

// Do runs the request.
func (t jsonPOST) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	start := graphql.Now()
	media, ok := negotiate(r.Header)
	if !ok {
		writeNotAcceptable(w)
		return
	}
	body, err := jsonbody.Read(w, r, t.maxBytes)
	switch err {
	case nil:
	case jsonbody.ErrTooLarge:
		writeRequestError(w, media, codePayloadTooLarge,
			fmt.Sprintf("the request body is larger than %d bytes", t.maxBytes))
		return
	case jsonbody.ErrNotUTF8:
		writeRequestError(w, media, string(models.BadUserInput), err.Error())
		return
	default:
		return // the client went away mid-body: nobody is left to answer
	}
	var key string
	if t.keys != nil {
		var keyed bool
		var err error
		if key, keyed, err = idempotency.ParseKey(r.Header); err != nil {
			writeRequestError(w, media, string(models.BadUserInput), models.ErrorMessage(err))
			return
		}
		if keyed && jsonbody.IsArray(body) {
			writeRequestError(w, media, string(models.BadUserInput), errKeyedBatch)
			return
		}
	}
	if t.maxBatch > 0 && jsonbody.IsArray(body) {
		t.doBatch(w, r, exec, body, start)
		return
	}
	var params requestParams
	if err := jsonbody.Unmarshal(body, &params); err != nil {
		msg := `the request body must be one JSON object: {"query": "...", "variables": {...}}`
		switch {
		case jsonbody.IsArray(body):
			msg = "batches (JSON arrays of requests) are not accepted: send one request per POST"
		case errors.Is(err, jsonbody.ErrDuplicateKey):
			msg = err.Error()
		}
		writeRequestError(w, media, string(models.BadUserInput), msg)
		return
	}
	if key != "" {
		t.doKeyed(w, r, exec, media, &params, start, key, body)
		return
	}
	resp, status := run(r, exec, media, &params, start, true)
	writeResponse(w, media, status, encodable(resp))
}

// doBatch runs each request of a JSON array in turn and answers with the array of their
// responses, in order. Batches are outside the GraphQL-over-HTTP spec, and no one status could
// stand for all of their responses, so a batch is always application/json with a 200.
func (t jsonPOST) doBatch(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor, body []byte, start time.Time) {
	var batch []requestParams
	if err := jsonbody.Unmarshal(body, &batch); err != nil || len(batch) == 0 {
		msg := "a batch must be a non-empty JSON array of request objects"
		if errors.Is(err, jsonbody.ErrDuplicateKey) {
			msg = err.Error()
		}
		writeRequestError(w, mediaJSON, string(models.BadUserInput), msg)
		return
	}
	if len(batch) > t.maxBatch {
		writeRequestError(w, mediaJSON, string(models.BadUserInput), fmt.Sprintf("a batch holds at most %d requests, not %d", t.maxBatch, len(batch)))
		return
	}
	responses := make([]any, len(batch))
	for i := range batch {
		resp, _ := run(r, exec, mediaJSON, &batch[i], start, true)
		responses[i] = encodable(resp)
	}
	writeResponse(w, mediaJSON, http.StatusOK, responses)
}

// queryGET is the GET transport: one query in the URL's query string. It differs from gqlgen's
// transport.GET as jsonPOST differs from transport.POST, and refuses a mutation with the 405 and
// Allow header that the spec asks for, where gqlgen's answers 406. A parameter given twice is
// refused, as a key twice in a JSON body is: a proxy in front may have read the other one.
type queryGET struct{}

var _ graphql.Transport = queryGET{}

// Supports takes GET requests.
func (queryGET) Supports(r *http.Request) bool { return r.Method == http.MethodGet }

// Do runs the request, if it is a query.
func (queryGET) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	start := graphql.Now()
	media, ok := negotiate(r.Header)
	if !ok {
		writeNotAcceptable(w)
		return
	}
	query, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		writeRequestError(w, media, string(models.BadUserInput), "the URL's query string is not URL-encoded parameters")
		return
	}
	for _, name := range []string{"query", "operationName", "variables", "extensions"} {
		if n := len(query[name]); n > 1 {
			writeRequestError(w, media, string(models.BadUserInput), fmt.Sprintf("the parameter %q is given %d times in the URL", name, n))
			return
		}
	}
	// The spec takes an empty parameter for a missing one.
	var params requestParams
	if q := query.Get("query"); q != "" {
		params.Query = &q
	}
	params.OperationName = query.Get("operationName")
	for _, p := range []struct {
		name string
		into *map[string]any
	}{{"variables", &params.Variables}, {"extensions", &params.Extensions}} {
		if s := query.Get(p.name); s != "" {
			if err := decodeObjectParameter(p.name, s, p.into); err != nil {
				writeRequestError(w, media, string(models.BadUserInput), err.Error())
				return
			}
		}
	}
	resp, status := run(r, exec, media, &params, start, false)
	if status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", http.MethodPost)
	}
	writeResponse(w, media, status, encodable(resp))
}

// decodeObjectParameter decodes s, the value of the URL parameter name, into a map. It is held to
// the rules of a JSON body: one JSON object, no key twice.
func decodeObjectParameter(name, s string, into *map[string]any) error {
	err := jsonbody.Unmarshal([]byte(s), into)
	if dup, ok := errors.AsType[*jsonbody.DuplicateKeyError](err); ok {
		path := name + "." + dup.Path
		if strings.HasPrefix(dup.Path, "[") {
			path = name + dup.Path
		}
		return fmt.Errorf("duplicate key %q at %s in the URL", dup.Key, path)
	}
	if err != nil {
		return fmt.Errorf("the parameter %q must be a JSON object", name)
	}
	return nil
}

// optionsOnly is gqlgen's answer to OPTIONS. transport.Options answers HEAD too, with a 405 that
// lacks the Allow header RFC 9110 requires, so HEAD is left to unsupported.
type optionsOnly struct{ transport.Options }

var _ graphql.Transport = optionsOnly{}

// Supports takes OPTIONS requests.
func (optionsOnly) Supports(r *http.Request) bool { return r.Method == http.MethodOptions }

// unsupported answers every request that no other transport takes, which gqlgen's handler would
// answer with a 400 without a Content-Type or an error code: a method the endpoint does not take
// is a 405 naming the ones it does, and a POST body in another media type is a 415.
type unsupported struct{}

var _ graphql.Transport = unsupported{}

// Supports takes every request: unsupported comes last.
func (unsupported) Supports(*http.Request) bool { return true }

// Do refuses the request.
func (unsupported) Do(w http.ResponseWriter, r *http.Request, _ graphql.GraphExecutor) {
	media, ok := negotiate(r.Header)
	if !ok {
		media = mediaJSON
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", strings.Join(allowedMethods, ", "))
		writeRequestError(w, media, codeMethodNotAllowed,
			fmt.Sprintf("%s is not allowed here: send a query with GET or POST, a mutation with POST", r.Method))
		return
	}
	writeRequestError(w, media, codeUnsupportedMediaType,
		"send the request as Content-Type: application/json, in UTF-8")
}

// writeNotAcceptable answers a request whose Accept header allows neither media type, in the
// one a client that sends no Accept header gets.
func writeNotAcceptable(w http.ResponseWriter) {
	writeRequestError(w, mediaJSON, codeNotAcceptable,
		fmt.Sprintf("responses are %s or %s: accept one of them", mediaGraphQLResponse, mediaJSON))
}

// writeRequestError answers, in media, a request that was refused before it could run, with the
// status that requestStatus gives code.
func writeRequestError(w http.ResponseWriter, media, code, message string) {
	writeResponse(w, media, requestStatus[code], encodable(errorResponse(code, message)))
}

func errorResponse(code, message string) *graphql.Response {
	return &graphql.Response{Errors: gqlerror.List{{
		Message:    message,
		Extensions: map[string]any{"code": code},
	}}}
}

// noData is a response where no operation ran. gqlgen's Response would send "data": null for
// it, which the GraphQL spec keeps for an operation that ran and failed; the entry is left out.
type noData struct {
	Errors     gqlerror.List  `json:"errors,omitempty"`
	Extensions map[string]any `json:"extensions,omitempty"`
}

// encodable is what resp is sent as.
func encodable(resp *graphql.Response) any {
	if resp.Data == nil {
		return noData{Errors: resp.Errors, Extensions: resp.Extensions}
	}
	return resp
}

// writeResponse sends body, in media, with status. Every response says Vary: Accept, as the
// media type and status depend on it, so that no cache serves one client's answer to another.
func writeResponse(w http.ResponseWriter, media string, status int, body any) {
	b, err := json.Marshal(body)
	if err != nil {
		// Only a resolver returning a value JSON cannot hold gets here.
		panic(fmt.Errorf("encoding a GraphQL response: %w", err))
	}
	w.Header().Set("Content-Type", media+"; charset=utf-8")
	w.Header().Add("Vary", "Accept")
	w.WriteHeader(status)
	w.Write(b)
}
