// Run once by the mongo image, on an empty data volume: the user natscron's recorder and
// API connect as, allowed to read and write the `natscron` database only.
db.getSiblingDB("natscron").createUser({
  user: "natscron",
  pwd: process.env.MONGO_NATSCRON_PASSWORD,
  roles: [{ role: "readWrite", db: "natscron" }],
});
