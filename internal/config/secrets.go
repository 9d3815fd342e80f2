package config

import (
	"fmt"
	"os"
	"strings"
)

// Read returns the secret's value from its environment variable or file (trailing newline
// trimmed). Errors name the key and the variable or path, never the value.
func (s Secret) Read(key string, getenv func(string) string) (string, error) {
	switch {
	case s.Env != "":
		v := getenv(s.Env)
		if v == "" {
			return "", fmt.Errorf("%s: environment variable %s is empty or unset", key, s.Env)
		}
		return v, nil
	case s.File != "":
		b, err := os.ReadFile(s.File)
		if err != nil {
			return "", fmt.Errorf("%s: %v", key, err)
		}
		v := strings.TrimRight(string(b), "\r\n")
		if v == "" {
			return "", fmt.Errorf("%s: file %s is empty", key, s.File)
		}
		return v, nil
	}
	return "", nil
}
