package oracle

// Extracted is what the frozen extraction takes from one file. The index
// package's differential test holds its own, reflection-free extraction to
// it.
type Extracted struct {
	Texts, Tags, Topics         []string
	Status, Category, Sub, Name string
	Start, Date                 string
}

// Extract runs the frozen extraction of kind on content.
func Extract(kind Kind, content []byte) Extracted {
	e := extract(kind, content)
	return Extracted{
		Texts: e.texts, Tags: e.tags, Topics: e.topics,
		Status: e.status, Category: e.category, Sub: e.sub, Name: e.name,
		Start: e.start, Date: e.date,
	}
}
