# moment: Moment's REST conventions (includes, CRUD, batch, limits) as a
# PostgreSQL extension.  Built with PGXS.

EXTENSION = moment
MODULE_big = moment
DATA = sql/moment--0.1.0.sql

OBJS = \
	src/moment.o \
	src/util.o \
	src/registry.o \
	src/tenant.o \
	src/plancache.o \
	src/shape.o \
	src/include.o \
	src/filter.o \
	src/query.o \
	src/read.o \
	src/write.o \
	src/batch.o \
	src/api.o

PG_CPPFLAGS = -I$(srcdir)/src
PG_CFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare

TESTS = $(sort $(wildcard test/sql/*.sql))
REGRESS = $(patsubst test/sql/%.sql,%,$(TESTS))
REGRESS_OPTS = --inputdir=test --load-extension=moment

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# every object depends on every header (PGXS tracks no header dependencies)
$(OBJS): $(wildcard $(srcdir)/src/*.h)
