module hyperkern/test/go-client

go 1.19

require hyperkern/test/go-mistify v0.0.0

// The wire types both test programs use, from this repository (no download).
replace hyperkern/test/go-mistify => ../go-mistify
