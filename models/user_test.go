package models

import (
	"fmt"
	"testing"
)

func TestParseID(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1", 1, true},
		{"12345", 12345, true},
		{"9223372036854775807", 9223372036854775807, true},
		{"9223372036854775808", 0, false},
		{"0", 0, false},
		{"012", 0, false},
		{"-1", 0, false},
		{"+1", 0, false},
		{" 1", 0, false},
		{"1e3", 0, false},
		{"", 0, false},
		{"１", 0, false},
	} {
		t.Run(fmt.Sprintf("%q", tc.in), func(t *testing.T) {
			got, ok := parseID(tc.in)
			if got != tc.want || ok != tc.ok {
				t.Errorf("parseID(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestCursorRoundTrip(t *testing.T) {
	u := &User{ID: 4711}
	id, ok := parseCursor(u.Cursor())
	if !ok || id != 4711 {
		t.Errorf("parseCursor(%q) = %d, %v", u.Cursor(), id, ok)
	}
	for _, bad := range []string{"", "4711", "dXNlcjo", "dXNlcjowMQ", "!!"} {
		t.Run(fmt.Sprintf("Refuses%q", bad), func(t *testing.T) {
			if _, ok := parseCursor(bad); ok {
				t.Errorf("parseCursor(%q) accepted", bad)
			}
		})
	}
}
