// Package doccheck checks the repository's Markdown: that every relative
// link leads to a file that exists and every #anchor to a heading, so the
// public documentation has no dead ends.
package doccheck
