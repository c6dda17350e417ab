package jsonbody

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"
)

func TestUnmarshal(t *testing.T) {
	manyKeys := func(n int, extra string) string {
		var b strings.Builder
		b.WriteString("{")
		for i := range n {
			fmt.Fprintf(&b, `"key%d": %d, `, i, i)
		}
		b.WriteString(extra + "}")
		return b.String()
	}
	nested := func(depth int) string {
		return strings.Repeat(`{"a":`, depth-1) + "{}" + strings.Repeat("}", depth-1)
	}
	cases := []struct {
		name string
		body string
		// wantErr is the message of the error Unmarshal must return; "" means the body must decode
		// to what encoding/json makes of it.
		wantErr string
		// wantKey is the key a duplicate key error names.
		wantKey string
	}{
		{"DuplicateTopLevelKey", `{"username": "a", "username": "b"}`, `duplicate key "username" in the request body`, "username"},
		{"DuplicateNestedKey", `{"variables": {"in": {"username": "a", "email": "e", "username": "b"}}}`, `duplicate key "username" at variables.in.username in the request body`, "username"},
		{"DuplicateAfterUnescaping", `{"username": "a", "user\u006eame": "b"}`, `duplicate key "username" in the request body`, "username"},
		{"DuplicateWhateverTheValues", `{"a": {"x": 1}, "a": [1]}`, `duplicate key "a" in the request body`, "a"},
		{"DuplicateInArrayElement", `{"list": [{"a": 1}, {"b": 1, "b": 2}]}`, `duplicate key "b" at list[1].b in the request body`, "b"},
		{"DuplicateInTopLevelArray", `[0, [{"a": 1, "a": 1}]]`, `duplicate key "a" at [1][0].a in the request body`, "a"},
		{"DuplicateAfterNestedObject", `{"a": {"b": {"c": 1}}, "d": 2, "a": 3}`, `duplicate key "a" in the request body`, "a"},
		{"DuplicateKeyThatIsNotAName", `{"x y": {"": 1, "": 2}}`, `duplicate key "" at ["x y"][""] in the request body`, ""},
		{"DuplicateLongKeyShortenedInMessage", `{"` + strings.Repeat("k", 100) + `": 1, "` + strings.Repeat("k", 100) + `": 2}`,
			`duplicate key "` + strings.Repeat("k", 64) + `"… in the request body`, strings.Repeat("k", 100)},
		{"DuplicateAmongManyKeys", manyKeys(100, `"key3": 0`), `duplicate key "key3" in the request body`, "key3"},
		{"DuplicateInvalidSurrogatesBothReadAsU+FFFD", `{"\ud800": 1, "\udc00": 2}`, "duplicate key \"\ufffd\" in the request body", "\ufffd"},

		{"SameKeyInSiblingObjectsIsFine", `{"a": {"x": 1, "y": 2}, "b": {"x": 1, "y": 2}}`, "", ""},
		{"SameKeyInArrayElementsIsFine", `[{"x": 1}, {"x": 2}, {"x": [{"x": 3}]}]`, "", ""},
		{"SameKeyAtEveryDepthIsFine", `{"x": {"x": {"x": 1}}, "y": 2}`, "", ""},
		{"KeyEqualToAValueIsFine", `{"a": "b", "b": "a"}`, "", ""},
		{"RequestKeysDifferingInCaseAreDuplicates", `{"query": "a", "QUERY": "b"}`, `duplicate key "QUERY" in the request body`, "QUERY"},
		{"BatchRequestKeysDifferingInCaseAreDuplicates", `[{"query": "a"}, {"query": "a", "Query": "b"}]`, `duplicate key "Query" at [1].Query in the request body`, "Query"},
		{"RequestKeysDifferingInCaseAmongManyAreDuplicates", manyKeys(100, `"KEY7": 0`), `duplicate key "KEY7" in the request body`, "KEY7"},
		{"NestedKeysDifferingInCaseAreDistinct", `{"variables": {"in": 1, "IN": 2}}`, "", ""},
		{"ManyDistinctKeysAreFine", manyKeys(1000, `"last": 0`), "", ""},
		{"NestingAsDeepAsEncodingJSONAllows", nested(10000), "", ""},
		{"NumbersKeptAsWritten", `{"n": 1.50, "big": 123456789012345678901234567890}`, "", ""},
		{"ScalarAtTopLevel", ` "just a string" `, "", ""},

		{"NestingDeeperThanEncodingJSONAllows", nested(10001), ErrNotJSON.Error(), ""},
		{"TrailingData", `{"a": 1} {"a": 1}`, ErrNotJSON.Error(), ""},
		{"TrailingComma", `{"a": 1,}`, ErrNotJSON.Error(), ""},
		{"MissingColon", `{"a" 1}`, ErrNotJSON.Error(), ""},
		{"DoubledComma", `[1,,2]`, ErrNotJSON.Error(), ""},
		{"Unterminated", `{"a": {"b": 1}`, ErrNotJSON.Error(), ""},
		{"StrayClose", `}`, ErrNotJSON.Error(), ""},
		{"Empty", ``, ErrNotJSON.Error(), ""},
		{"NotJSON", `username=a`, ErrNotJSON.Error(), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got any
			err := Unmarshal([]byte(tc.body), &got)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("got error %v, want none", err)
				}
				if want := decodeAsEncodingJSON(t, tc.body); !reflect.DeepEqual(got, want) {
					t.Errorf("got %v, want %v", got, want)
				}
				return
			}
			if err == nil || err.Error() != tc.wantErr {
				t.Fatalf("got error %v, want %q", err, tc.wantErr)
			}
			dup, isDup := errors.AsType[*DuplicateKeyError](err)
			if wantDup := strings.HasPrefix(tc.wantErr, "duplicate key"); isDup != wantDup || errors.Is(err, ErrDuplicateKey) != wantDup {
				t.Fatalf("got a %T, want a *DuplicateKeyError: %v", err, wantDup)
			}
			if isDup && dup.Key != tc.wantKey {
				t.Errorf("got key %q, want %q", dup.Key, tc.wantKey)
			}
		})
	}

	t.Run("IntoAStruct", func(t *testing.T) {
		var got graphql.RawParams
		err := Unmarshal([]byte(`{"query": "{ me { id } }", "variables": {"in": {"n": 1}}}`), &got)
		if err != nil || got.Query != "{ me { id } }" || !reflect.DeepEqual(got.Variables, map[string]any{"in": map[string]any{"n": json.Number("1")}}) {
			t.Errorf("got %+v, %v", got, err)
		}
	})

	// The check walks an object's keys once, however many there are: a body of a hundred thousand
	// keys costs a small multiple of what encoding/json alone takes to read it, where comparing
	// every key with every other would take thousands of times as long.
	t.Run("HundredThousandKeysIsLinear", func(t *testing.T) {
		distinct := []byte(manyKeys(100_000, `"last": 0`))
		if err := Unmarshal([]byte(manyKeys(100_000, `"key99999": 0`)), new(any)); !errors.Is(err, ErrDuplicateKey) {
			t.Fatalf("a duplicate after a hundred thousand keys: got %v, want ErrDuplicateKey", err)
		}
		fastest := func(decode func() error) time.Duration {
			best := time.Duration(1 << 62)
			for range 3 {
				start := time.Now()
				if err := decode(); err != nil {
					t.Fatal(err)
				}
				best = min(best, time.Since(start))
			}
			return best
		}
		ours := fastest(func() error { return Unmarshal(distinct, new(any)) })
		theirs := fastest(func() error { return json.Unmarshal(distinct, new(any)) })
		if ours > 20*theirs {
			t.Errorf("Unmarshal took %v, %.0f times encoding/json's %v", ours, float64(ours)/float64(theirs), theirs)
		}
	})
}

// decodeAsEncodingJSON decodes body as Unmarshal does, with encoding/json alone.
func decodeAsEncodingJSON(t testing.TB, body string) any {
	t.Helper()
	var v any
	dec := json.NewDecoder(strings.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("encoding/json refuses %q: %v", body, err)
	}
	return v
}

func TestDecode(t *testing.T) {
	const limit = 64
	cases := []struct {
		name string
		body io.Reader
		// unsized hides the body's length, as a chunked request does.
		unsized bool
		want    error
	}{
		{"OK", strings.NewReader(`{"username": "a"}`), false, nil},
		{"TooLargeByContentLength", strings.NewReader(`{"username": "` + strings.Repeat("a", limit) + `"}`), false, ErrTooLarge},
		{"TooLargeWhileReading", strings.NewReader(`{"username": "` + strings.Repeat("a", limit) + `"}`), true, ErrTooLarge},
		{"NotUTF8", strings.NewReader("{\"username\": \"a\xffb\"}"), false, ErrNotUTF8},
		{"NotUTF8BeforeDuplicateKey", strings.NewReader("{\"a\": \"\xff\", \"a\": 1}"), false, ErrNotUTF8},
		{"CutShort", io.MultiReader(strings.NewReader(`{"username": `), errReader{}), true, ErrAborted},
		{"TrailingData", strings.NewReader(`{"username": "a"} x`), false, ErrNotJSON},
		{"DuplicateKey", strings.NewReader(`{"username": "a", "username": "b"}`), false, ErrDuplicateKey},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := tc.body
			if tc.unsized {
				body = io.MultiReader(body)
			}
			r := httptest.NewRequest(http.MethodPut, "/users/1", body)
			var v map[string]json.RawMessage
			if err := Decode(httptest.NewRecorder(), r, limit, &v); !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }

// FuzzUnmarshal checks Unmarshal against encoding/json whatever arrives: it never accepts what
// encoding/json refuses, refuses a duplicate key with the key that a plain walk over the tokens
// finds first, and otherwise decodes exactly what encoding/json does. `go test` replays the seeds
// in testdata/fuzz/FuzzUnmarshal; `go test -fuzz FuzzUnmarshal -run '^$' ./internal/jsonbody`
// explores further.
func FuzzUnmarshal(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		var got any
		err := Unmarshal(data, &got)
		if !json.Valid(data) {
			if err == nil {
				t.Fatalf("accepted %q, which encoding/json refuses", data)
			}
			return
		}
		if key, found := firstDuplicate(t, data); found {
			if dup, ok := errors.AsType[*DuplicateKeyError](err); !ok || dup.Key != key {
				t.Fatalf("%q: got %v, want the duplicate key %q", data, err, key)
			}
			return
		}
		if err != nil {
			t.Fatalf("refused %q, which has no duplicate key: %v", data, err)
		}
		if want := decodeAsEncodingJSON(t, string(data)); !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: got %v, want %v", data, got, want)
		}
	})
}

// firstDuplicate returns the first key of valid JSON data that its object already holds, by the
// plainest walk over encoding/json's tokens; a request object's keys (the body's, or those of
// the elements of a body that is an array) are compared regardless of case.
func firstDuplicate(t *testing.T, data []byte) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	// Numbers too large for a float64 are valid JSON all the same.
	dec.UseNumber()
	var walk func(depth int, inTopArray bool) (string, bool)
	walk = func(depth int, inTopArray bool) (string, bool) {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		switch tok {
		case json.Delim('{'):
			fold := depth == 0 || depth == 1 && inTopArray
			seen := map[string]bool{}
			for dec.More() {
				tok, err := dec.Token()
				if err != nil {
					t.Fatal(err)
				}
				key := tok.(string)
				seenAs := key
				if fold {
					seenAs = strings.ToLower(key)
				}
				if seen[seenAs] {
					return key, true
				}
				seen[seenAs] = true
				if key, found := walk(depth+1, false); found {
					return key, true
				}
			}
			dec.Token()
		case json.Delim('['):
			for dec.More() {
				if key, found := walk(depth+1, depth == 0); found {
					return key, true
				}
			}
			dec.Token()
		}
		return "", false
	}
	return walk(0, false)
}

// BenchmarkUnmarshal decodes the bodies of a typical PUT /users/{id} and a typical updateUser
// mutation, as the two edges do.
func BenchmarkUnmarshal(b *testing.B) {
	b.Run("PUTBody", func(b *testing.B) {
		body := []byte(`{"username": "alice.smith", "email": "alice.smith@example.com"}`)
		b.ReportAllocs()
		for b.Loop() {
			var fields map[string]json.RawMessage
			if err := Unmarshal(body, &fields); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("GraphQLMutation", func(b *testing.B) {
		body := []byte(`{"query": "mutation($id: ID!, $in: UpdateUserInput!) { updateUser(id: $id, input: $in) { id username email version } }", "variables": {"id": "1", "in": {"username": "alice.smith", "email": "alice.smith@example.com"}}}`)
		b.ReportAllocs()
		for b.Loop() {
			var params graphql.RawParams
			if err := Unmarshal(body, &params); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// The typical bodies of both edges skip the walk over every token; anything that could hide a
// repeated key goes through it.
func TestPlainDistinctKeys(t *testing.T) {
	many := "{"
	for i := range plainKeys + 1 {
		many += fmt.Sprintf(`"k%d": 1,`, i)
	}
	many = strings.TrimSuffix(many, ",") + "}"
	for _, tc := range []struct {
		name string
		body string
		want bool
	}{
		{"PUTBody", `{"username": "alice.smith", "email": "alice@example.com"}`, true},
		{"MutationBody", `{"query": "mutation($id: ID!, $in: UpdateUserInput!) { updateUser(id: $id, input: $in) { id } }", "variables": {"id": "1", "in": {"username": "a\"b:c"}}}`, true},
		{"EscapedQuoteInAValueFollowedByColon", `{"query": "{ user(id: \"1\") { id } }", "x": "\":"}`, true},
		{"RepeatedKey", `{"a": 1, "a": 2}`, false},
		{"KeysAlikeButForCase", `{"query": 1, "QUERY": 2}`, false},
		{"SameKeyInSiblingObjects", `{"a": {"x": 1}, "b": {"x": 2}}`, false},
		{"EscapedKey", `{"user\u006eame": "a"}`, false},
		{"KeyBeyondASCII", `{"naïve": 1}`, false},
		{"MoreKeysThanItCompares", many, false},
		{"UnterminatedString", `{"a`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := plainDistinctKeys([]byte(tc.body)); got != tc.want {
				t.Errorf("plainDistinctKeys(%s) = %v, want %v", tc.body, got, tc.want)
			}
		})
	}
}
