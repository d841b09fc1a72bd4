module hyperkern/test/go-mistify

go 1.19
