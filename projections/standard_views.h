#pragma once
// The views the product keeps, in the order a runner must apply them (later projectors may
// read rows written by earlier ones in the same batch). The server, the tests and the tools
// all use this one list, so that a "fresh rebuild" rebuilds exactly what the server keeps.

#include <vector>

#include "projections/outbox_views.h"
#include "projections/reference_views.h"
#include "projections/structure_views.h"
#include "projections/ticket_views.h"

namespace chorus::projections {

struct StandardViews {
  TicketViews tickets;
  StructureViews structures;
  OutboxViews outbox;  // reads the tickets' emitters
  ReferenceObjectViews reference_objects;

  [[nodiscard]] std::vector<Projector*> list() {
    return {&tickets, &structures, &outbox, &reference_objects};
  }
};

}  // namespace chorus::projections
