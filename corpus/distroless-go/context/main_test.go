package main

import (
	"testing"
)

func Test1(t *testing.T) {
}
