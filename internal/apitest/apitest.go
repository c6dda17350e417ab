// Package apitest is a test client of the service's HTTP API, shared by the tests of every package
// that serves part of it: GraphQL requests and responses as a client reads them, and REST requests
// whose every response is checked against the OpenAPI document that the server itself serves at
// /openapi.yaml, so that the document cannot drift from the code.
package apitest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// Client sends requests to the API served at URL.
type Client struct {
	URL string
	// AdminToken is a valid token with the admin role, for the requests that set up a test.
	AdminToken string
}

// GraphQLResponse is a GraphQL response as a client reads it.
type GraphQLResponse struct {
	Status int
	Data   map[string]json.RawMessage `json:"data"`
	Errors []GraphQLError             `json:"errors"`
}

// GraphQLError is one of a response's errors.
type GraphQLError struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
}

// Code returns the first error's extensions.code, or "" if there is no error.
func (r GraphQLResponse) Code() string {
	if len(r.Errors) == 0 {
		return ""
	}
	code, _ := r.Errors[0].Extensions["code"].(string)
	return code
}

// Field returns the first error's extensions.field.
func (r GraphQLResponse) Field() string {
	if len(r.Errors) == 0 {
		return ""
	}
	field, _ := r.Errors[0].Extensions["field"].(string)
	return field
}

// User is a User as the API renders it.
type User struct {
	ID        string    `json:"id"`
	Username  string    `json:"username"`
	Email     string    `json:"email"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
	Version   int       `json:"version"`
}

// UserFields selects every field of a User.
const UserFields = "id username email createdAt updatedAt version"

// UpdateMutation is the updateUser mutation, with its ID and input as variables $id and $in.
const UpdateMutation = `mutation($id: ID!, $in: UpdateUserInput!) { updateUser(id: $id, input: $in) { ` + UserFields + ` } }`

// User decodes the user at data[name].
func (r GraphQLResponse) User(t testing.TB, name string) *User {
	t.Helper()
	raw, ok := r.Data[name]
	if !ok {
		t.Fatalf("no %q in data; errors: %+v", name, r.Errors)
	}
	var u *User
	if err := json.Unmarshal(raw, &u); err != nil {
		t.Fatal(err)
	}
	return u
}

// GraphQL POSTs a GraphQL request to /graphql; an empty bearer sends no Authorization header.
func (c *Client) GraphQL(t testing.TB, bearer, query string, variables map[string]any) GraphQLResponse {
	t.Helper()
	body, err := json.Marshal(map[string]any{"query": query, "variables": variables})
	if err != nil {
		t.Fatal(err)
	}
	return c.PostGraphQL(t, bearer, body)
}

// PostGraphQL POSTs body, as it is, to /graphql.
func (c *Client) PostGraphQL(t testing.TB, bearer string, body []byte) GraphQLResponse {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.URL+"/graphql", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	return DoGraphQL(t, http.DefaultClient, req)
}

// DoGraphQL sends a GraphQL request with client and reads its response, failing the test on any
// error without an extensions.code.
func DoGraphQL(t testing.TB, client *http.Client, req *http.Request) GraphQLResponse {
	t.Helper()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := GraphQLResponse{Status: resp.StatusCode}
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("response is not JSON (status %d): %s", resp.StatusCode, raw)
	}
	for _, e := range out.Errors {
		if _, ok := e.Extensions["code"].(string); !ok {
			t.Errorf("error without extensions.code: %s", raw)
		}
	}
	return out
}

// CreateUser creates a user as an admin and returns it.
func (c *Client) CreateUser(t testing.TB, username, email string) *User {
	t.Helper()
	r := c.GraphQL(t, c.AdminToken, `mutation($in: CreateUserInput!) { createUser(input: $in) { `+UserFields+` } }`,
		map[string]any{"in": map[string]any{"username": username, "email": email}})
	if len(r.Errors) > 0 {
		t.Fatalf("createUser(%q, %q): %+v", username, email, r.Errors)
	}
	return r.User(t, "createUser")
}

// UpdateUser sends the updateUser mutation with the given input.
func (c *Client) UpdateUser(t testing.TB, bearer, id string, input map[string]any) GraphQLResponse {
	t.Helper()
	return c.GraphQL(t, bearer, UpdateMutation, map[string]any{"id": id, "in": input})
}

// RESTResponse is a response of the REST routes as a client reads it.
type RESTResponse struct {
	Status int
	Header http.Header
	Body   []byte
}

// Problem decodes an error body.
func (r RESTResponse) Problem(t testing.TB) Problem {
	t.Helper()
	var p Problem
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatalf("status %d, body is not a problem: %s", r.Status, r.Body)
	}
	return p
}

// Problem is an RFC 9457 problem details body, as the REST routes send it.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Code   string `json:"code"`
	Errors []struct {
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"errors"`
}

// Fields returns the fields the problem names.
func (p Problem) Fields() []string {
	var out []string
	for _, e := range p.Errors {
		out = append(out, e.Field)
	}
	return out
}

// REST sends a request to the REST routes and checks the response against the OpenAPI document
// the server serves.
func (c *Client) REST(t testing.TB, method, path string, header http.Header, body string) RESTResponse {
	t.Helper()
	req, err := http.NewRequest(method, c.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	c.CheckOpenAPI(t, req, resp, raw)
	return RESTResponse{Status: resp.StatusCode, Header: resp.Header, Body: raw}
}

// Put is REST for a PUT with a JSON body and, if bearer is not empty, a token; extra holds more
// headers, as name, value, name, value...
func (c *Client) Put(t testing.TB, bearer, id, body string, extra ...string) RESTResponse {
	t.Helper()
	h := http.Header{"Content-Type": {"application/json"}}
	if bearer != "" {
		h.Set("Authorization", "Bearer "+bearer)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		h.Set(extra[i], extra[i+1])
	}
	return c.REST(t, http.MethodPut, "/users/"+id, h, body)
}

// openAPIRouters holds the routers of the OpenAPI documents seen, by their text: each test server
// serves the same document, which is loaded and validated once.
var openAPIRouters sync.Map // string → routers.Router

// openAPIRouter returns the router of the OpenAPI document the server serves.
func (c *Client) openAPIRouter(t testing.TB) routers.Router {
	t.Helper()
	resp, err := http.Get(c.URL + "/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /openapi.yaml: %d %v", resp.StatusCode, err)
	}
	if r, ok := openAPIRouters.Load(string(raw)); ok {
		return r.(routers.Router)
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(raw)
	if err != nil {
		t.Fatalf("the OpenAPI document: %v", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("the OpenAPI document: %v", err)
	}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatalf("the OpenAPI document: %v", err)
	}
	openAPIRouters.Store(string(raw), router)
	return router
}

// CheckOpenAPI fails the test if the response to req does not match the OpenAPI document.
func (c *Client) CheckOpenAPI(t testing.TB, req *http.Request, resp *http.Response, body []byte) {
	t.Helper()
	router := c.openAPIRouter(t)
	// A 405 answers a method the document does not have: check it against a method it has.
	lookup := req.Clone(context.Background())
	if resp.StatusCode == http.StatusMethodNotAllowed || req.Method == http.MethodHead {
		lookup.Method = http.MethodGet
	}
	lookup.URL, _ = url.Parse(strings.TrimPrefix(req.URL.String(), req.URL.Scheme+"://"+req.URL.Host))
	route, params, err := router.FindRoute(lookup)
	if err != nil {
		t.Fatalf("%s %s is not in the OpenAPI document: %v", req.Method, req.URL.Path, err)
	}
	if req.Method == http.MethodHead {
		return // no body to check
	}
	input := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: lookup, PathParams: params, Route: route},
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), input); err != nil {
		t.Errorf("%s %s: response %d does not match the OpenAPI document: %v\nbody: %s", req.Method, req.URL.Path, resp.StatusCode, err, body)
	}
}

var uniqCounter struct {
	sync.Mutex
	n int
}

// uniqProcess tells the names of this test process from those of the others that run at the same
// time, as go test runs each package's tests in a process of its own: on a database they share,
// such as the Vitess keyspace, their counters alone would give the same names.
var uniqProcess = strconv.FormatInt(int64(os.Getpid())%(36*36*36), 36)

// Uniq returns a name that no other call in this process, nor in another test process running
// beside it, returns, for usernames and emails.
func Uniq(prefix string) string {
	uniqCounter.Lock()
	defer uniqCounter.Unlock()
	uniqCounter.n++
	return fmt.Sprintf("%s%s.%d", prefix, uniqProcess, uniqCounter.n)
}

// SyncBuffer is a bytes.Buffer that a server's goroutines may write while a test reads it: where
// a test keeps what a server logs.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer.
func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
