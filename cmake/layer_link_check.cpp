// The program each library layer links on its own (see agentbus_layer() in CMakeLists.txt):
// it does nothing; that it links at all, with every object of the layer and of the layers
// below and nothing else, proves that no code in them calls into a layer above.
int main() { return 0; }
