// Alert rules on what the app emits (shared/telemetry.py; tests/unit/test_infra.py checks every name
// below against it) and the action group they notify. Log search alerts on the Application Insights
// resource, classic table names: log records are `traces`, OpenTelemetry metrics `customMetrics`
// (https://learn.microsoft.com/azure/azure-monitor/alerts/alerts-create-log-alert-rule,
// https://learn.microsoft.com/azure/azure-monitor/app/opentelemetry-add-modify?tabs=python).
param location string
param tags object = {}
param applicationInsightsName string
param actionGroupName string
@description('E-mail address the alerts notify; empty = the rules fire without e-mail (portal only).')
param alertEmail string
@description('Minutes between scheduled syncs (the period of SYNC_SCHEDULE).')
@minValue(1)
@maxValue(1440)
param syncIntervalMinutes int
@description('HTTP 429 answers per service and 5 minutes that, three windows in a row, raise the alert.')
@minValue(1)
param throttledPerFiveMinutes int

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: actionGroupName
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'bcdv-sync'
    enabled: true
    emailReceivers: empty(alertEmail) ? [] : [
      {
        name: 'administrator'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

// A run ended Failed, or finished with failed records (the run-finished log record's counters).
resource runFailed 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'sync-run-failed'
  location: location
  tags: tags
  properties: {
    displayName: 'Sync run failed or finished with errors'
    description: 'A synchronization run ended Failed, or with failed records; the portal lists them.'
    severity: 1
    enabled: true
    scopes: [applicationInsights.id]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    criteria: {
      allOf: [
        {
          query: 'traces | where tostring(customDimensions["event"]) == "sync.run.finished" | extend status = tostring(customDimensions["sync.status"]), failed = toint(customDimensions["sync.failed_records"]), run = tostring(customDimensions["sync.run_id"]) | where status == "Failed" or failed > 0 | project timestamp, run, status, failed'
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: false
    actions: {
      actionGroups: [actionGroup.id]
    }
  }
}

// A slice message failed maxDequeueCount times and went to the poison queue.
resource poisonMessage 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'sync-poison-message'
  location: location
  tags: tags
  properties: {
    displayName: 'Sync message moved to the poison queue'
    description: 'A slice failed on every attempt; its job ended Failed with the reason recorded.'
    severity: 1
    enabled: true
    scopes: [applicationInsights.id]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    criteria: {
      allOf: [
        {
          query: 'customMetrics | where name == "sync.poison_messages" | summarize poisoned = sum(value)'
          timeAggregation: 'Total'
          metricMeasureColumn: 'poisoned'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: false
    actions: {
      actionGroups: [actionGroup.id]
    }
  }
}

// No modified (or full) run finished Succeeded for twice the schedule's period: the timer stopped,
// or every run fails. Also fires on a new deployment until its first run.
resource noSuccessfulSync 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'sync-no-successful-run'
  location: location
  tags: tags
  properties: {
    displayName: 'No successful modified sync for twice the schedule'
    description: 'No modified or full synchronization succeeded for ${2 * syncIntervalMinutes} minutes.'
    severity: 2
    enabled: true
    scopes: [applicationInsights.id]
    evaluationFrequency: 'PT15M'
    windowSize: 'P2D'
    criteria: {
      allOf: [
        {
          query: 'traces | where timestamp > ago(${2 * syncIntervalMinutes}m) | where tostring(customDimensions["event"]) == "sync.run.finished" | where tostring(customDimensions["sync.status"]) == "Succeeded" and tostring(customDimensions["sync.kind"]) in ("modified", "full")'
          timeAggregation: 'Count'
          operator: 'LessThan'
          threshold: 1
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: [actionGroup.id]
    }
  }
}

// Sustained throttling: more than the threshold of 429 answers per service in each of three
// consecutive 5-minute windows (the connectors wait Retry-After each time, so syncs slow down).
resource sustainedThrottling 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'sync-sustained-429'
  location: location
  tags: tags
  properties: {
    displayName: 'Sustained HTTP 429 from Business Central or Dataverse'
    description: 'More than ${throttledPerFiveMinutes} throttled requests per 5 minutes for 15 minutes.'
    severity: 2
    enabled: true
    scopes: [applicationInsights.id]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    criteria: {
      allOf: [
        {
          query: 'customMetrics | where name == "sync.http.throttled" | extend service = tostring(customDimensions["sync.service"]) | summarize throttled = sum(value) by service'
          timeAggregation: 'Total'
          metricMeasureColumn: 'throttled'
          dimensions: [
            {
              name: 'service'
              operator: 'Include'
              values: ['*']
            }
          ]
          operator: 'GreaterThan'
          threshold: throttledPerFiveMinutes
          failingPeriods: {
            numberOfEvaluationPeriods: 3
            minFailingPeriodsToAlert: 3
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: [actionGroup.id]
    }
  }
}

output actionGroupId string = actionGroup.id
