package auth

import "sync"

// tokenCache remembers verified tokens. Every API request looks its token up, concurrently, so
// lookups share a read lock and never wait for one another; an LRU would take an exclusive lock
// on every lookup to note its use. When the cache is full, an arbitrary entry makes room: a token
// that falls out is simply verified again.
type tokenCache struct {
	mu      sync.RWMutex
	entries map[string]verifiedToken
	max     int
}

func newTokenCache(max int) *tokenCache {
	return &tokenCache{entries: make(map[string]verifiedToken, max), max: max}
}

func (c *tokenCache) get(token string) (verifiedToken, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	v, ok := c.entries[token]
	return v, ok
}

func (c *tokenCache) add(token string, v verifiedToken) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		for k := range c.entries {
			delete(c.entries, k)
			break
		}
	}
	c.entries[token] = v
}

func (c *tokenCache) remove(token string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, token)
}
