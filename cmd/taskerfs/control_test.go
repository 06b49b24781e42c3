package main

import (
	"net/http"
	"testing"
)

// TestControlRoutes: the daemon's routes are one set with no path answered
// twice (the handlers are not called: no data dir is needed), and a path
// two sets answer is refused, not silently replaced.
func TestControlRoutes(t *testing.T) {
	routes, err := controlRoutes(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/gc", "/sync", "/stats", "/search", "/snapshot/create"} {
		if routes[p] == nil {
			t.Errorf("no route %s", p)
		}
	}
	h := func(http.ResponseWriter, *http.Request) {}
	if _, err := mergeRoutes(map[string]http.HandlerFunc{"/a": h, "/gc": h}, map[string]http.HandlerFunc{"/gc": h}); err == nil {
		t.Error("a route registered twice was taken")
	}
}
